import assert from 'node:assert/strict'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadFirewallConf, loadListConf, loadMotdPath, makeFirewall, rsyncdMotdFile } from '../src/config/dtp-config.js'
import { homePaths, resolveHome } from '../src/config/home.js'
import { loadHome } from '../src/config/load.js'
import { DEFAULT_PORT, loadMainConfig } from '../src/config/main-config.js'
import { DEFAULT_INDEX_FILES, loadRepoConfig } from '../src/config/repo-config.js'
import { DsyncError, ExitCode } from '../src/errors.js'
import { tempDir } from '../testbed/tree.js'

const dir = tempDir('dsync-config-')
let fileCounter = 0

/** Writes `text` to a fresh file (so every error can be checked for naming exactly it). */
function conf(text: string, name = 'x.conf'): string {
  const sub = join(dir, String(fileCounter++))
  mkdirSync(sub, { recursive: true })
  const file = join(sub, name)
  writeFileSync(file, text)
  return file
}

/** Asserts `fn` throws a config DsyncError whose one-line message names `file:line`. */
function assertConfigError(fn: () => unknown, file: string, line: number | undefined, also?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DsyncError, `expected DsyncError, got ${String(err)}`)
    assert.equal(err.exitCode, ExitCode.config, err.message)
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`)
    const where = line === undefined ? file : `${file}:${line}:`
    assert.ok(err.message.includes(where), `"${err.message}" should name ${where}`)
    if (also) assert.match(err.message, also)
    return true
  })
}

// ---------------------------------------------------------------- xync.conf

test('xync.conf: comments, blank lines, whitespace, CRLF and BOM are accepted; defaults apply', () => {
  const file = conf('\uFEFF# main config\r\n\r\n  webroot = /mirrors  \r\n#port=1\r\n')
  const c = loadMainConfig(file)
  assert.equal(c.webroot, '/mirrors')
  assert.equal(c.port, DEFAULT_PORT)
  assert.deepEqual(c.trackers, [])
  assert.deepEqual(c.listen, [])
  assert.equal(c.dht, false)
  assert.equal(c.uploadLimit, 0)
  assert.deepEqual(c.warnings, [])
  assert.equal(c.origins.get('webroot')?.line, 3)
})

test('xync.conf: every known key parses', () => {
  const file = conf([
    'webroot=/srv/mirrors',
    'tracker=udp://127.0.0.1:6969/announce, http://127.0.0.1:8000/announce,wss://t.example/announce',
    'port=12345',
    'listen=127.0.0.2, ::1',
    'dht=yes',
    'upload-limit=2.5',
    'peers=mirror.example.org, 192.0.2.7:47000, [2001:db8::1]:47921',
  ].join('\n'))
  const c = loadMainConfig(file)
  assert.equal(c.uploadLimit, 2.5)
  assert.deepEqual(c.peers, ['mirror.example.org', '192.0.2.7:47000', '[2001:db8::1]:47921'])
  assert.equal(c.webroot, '/srv/mirrors')
  assert.deepEqual(c.trackers, ['udp://127.0.0.1:6969/announce', 'http://127.0.0.1:8000/announce', 'wss://t.example/announce'])
  assert.equal(c.port, 12345)
  assert.deepEqual(c.listen, ['127.0.0.2', '::1'])
  assert.equal(c.dht, true)
})

test('xync.conf: a value may contain "=" (only the first one splits)', () => {
  const c = loadMainConfig(conf('webroot=/srv/a=b\n'))
  assert.equal(c.webroot, '/srv/a=b')
})

test('xync.conf: an unknown key is a warning naming file and line, not an error', () => {
  const file = conf('webroot=/m\n\nfrobnicate=1\n')
  const c = loadMainConfig(file)
  assert.equal(c.warnings.length, 1)
  assert.ok(c.warnings[0].includes(`${file}:3:`), c.warnings[0])
  assert.match(c.warnings[0], /frobnicate/)
})

const badMainLines: { name: string; text: string; line: number; match?: RegExp }[] = [
  { name: 'no "="', text: 'webroot=/m\njust some words\n', line: 2, match: /just some words/ },
  { name: 'empty key', text: 'webroot=/m\n=value\n', line: 2 },
  { name: 'key with inner space', text: 'web root=/m\n', line: 1 },
  { name: 'duplicate key', text: 'webroot=/m\n# c\nwebroot=/n\n', line: 3, match: /line 1/ },
  { name: 'bad bool', text: 'webroot=/m\ndht=maybe\n', line: 2, match: /dht/ },
  { name: 'empty bool', text: 'webroot=/m\ndht=\n', line: 2 },
  { name: 'port 0', text: 'webroot=/m\nport=0\n', line: 2, match: /port/ },
  { name: 'port too big', text: 'webroot=/m\nport=65536\n', line: 2 },
  { name: 'port not a number', text: 'webroot=/m\nport=http\n', line: 2 },
  { name: 'negative port', text: 'webroot=/m\nport=-1\n', line: 2 },
  { name: 'tracker not a URL', text: 'webroot=/m\ntracker=tracker.example.org\n', line: 2, match: /tracker/ },
  { name: 'tracker with a bad scheme', text: 'webroot=/m\ntracker=ftp://t.example/announce\n', line: 2 },
  { name: 'second tracker bad', text: 'webroot=/m\ntracker=udp://127.0.0.1:1/a, nope\n', line: 2, match: /nope/ },
  { name: 'listen not an IP', text: 'webroot=/m\nlisten=localhost\n', line: 2 },
  { name: 'upload-limit with a unit', text: 'webroot=/m\nupload-limit=40M\n', line: 2, match: /upload-limit.*megabits/ },
  { name: 'negative upload-limit', text: 'webroot=/m\nupload-limit=-1\n', line: 2 },
  { name: 'peers with a path', text: 'webroot=/m\npeers=a.example.org/x\n', line: 2, match: /peers/ },
  { name: 'peers port 0', text: 'webroot=/m\npeers=192.0.2.1:0\n', line: 2 },
  { name: 'empty webroot', text: 'webroot=\n', line: 1 },
]
for (const c of badMainLines) {
  test(`xync.conf bad line: ${c.name} -> error naming file and line`, () => {
    const file = conf(c.text, 'xync.conf')
    assertConfigError(() => loadMainConfig(file), file, c.line, c.match)
  })
}

test('xync.conf: missing webroot names the file', () => {
  const file = conf('port=1000\n', 'xync.conf')
  assertConfigError(() => loadMainConfig(file), file, undefined, /webroot/)
})

test('xync.conf: an unreadable (missing) file is an io error naming it', () => {
  const file = join(dir, 'does-not-exist.conf')
  assert.throws(() => loadMainConfig(file), (err: unknown) =>
    err instanceof DsyncError && err.exitCode === ExitCode.io && err.message.includes(file))
})

// ---------------------------------------------------------------- repos/*.conf

test('repo conf: full set of keys, relative save taken from webroot, defaults', () => {
  const file = conf([
    'repo=rocky', 'save=rocky/9', 'dsync=true',
    'dsync-url=dtp://127.0.0.2/rocky, magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567',
    'status=/tmp/rocky.status', 'tracker=http://127.0.0.1:1/announce', 'retries=5', 'connections=8', 'delete-limit=10',
  ].join('\n'))
  const r = loadRepoConfig(file, '/web')
  assert.equal(r.name, 'rocky')
  assert.equal(r.save, '/web/rocky/9')
  assert.equal(r.publish, true)
  assert.equal(r.sources.length, 2)
  assert.equal(r.statusFile, '/tmp/rocky.status')
  assert.deepEqual(r.trackers, ['http://127.0.0.1:1/announce'])
  assert.equal(r.retries, 5)
  assert.equal(r.connections, 8)
  assert.equal(r.deleteLimit, 10)
  const d = loadRepoConfig(conf('repo=a\nsave=/abs/a\n'), '/web')
  assert.equal(d.save, '/abs/a')
  assert.equal(d.publish, false)
  assert.equal(d.trackers, undefined)
  assert.deepEqual(d.indexFiles, DEFAULT_INDEX_FILES)
  assert.equal(d.deleteLimit, 50)
})

test('repo conf: unknown key warns with file and line', () => {
  const file = conf('repo=a\nsave=/a\nrsync-opts=-av\n')
  const r = loadRepoConfig(file, '/web')
  assert.equal(r.warnings.length, 1)
  assert.ok(r.warnings[0].includes(`${file}:3:`), r.warnings[0])
})

const badRepoLines: { name: string; text: string; line?: number; match?: RegExp }[] = [
  { name: 'no "="', text: 'repo=a\nsave /a\n', line: 2 },
  { name: 'empty key', text: 'repo=a\n = x\n', line: 2 },
  { name: 'duplicate repo=', text: 'repo=a\nsave=/a\nrepo=b\n', line: 3 },
  { name: 'bad dsync bool', text: 'repo=a\nsave=/a\ndsync=ja\n', line: 3, match: /dsync/ },
  { name: 'repo name with slash', text: 'repo=../etc\nsave=/a\n', line: 1, match: /repo/ },
  { name: 'repo name with space', text: 'repo=my repo\nsave=/a\n', line: 1 },
  { name: 'repo name starting with a dot', text: 'repo=.hidden\nsave=/a\n', line: 1 },
  { name: 'empty repo name', text: 'repo=\nsave=/a\n', line: 1 },
  { name: 'bad tracker URL', text: 'repo=a\nsave=/a\ntracker=gopher://x/\n', line: 3 },
  { name: 'delete-limit over 100', text: 'repo=a\nsave=/a\ndelete-limit=101\n', line: 3 },
  { name: 'connections 0', text: 'repo=a\nsave=/a\nconnections=0\n', line: 3 },
  { name: 'upload-limit not a number', text: 'repo=a\nsave=/a\nupload-limit=fast\n', line: 3, match: /upload-limit/ },
  { name: 'retries not a number', text: 'repo=a\nsave=/a\nretries=many\n', line: 3 },
  { name: 'missing repo=', text: 'save=/a\n', match: /repo/ },
  { name: 'missing save=', text: 'repo=a\n', match: /save/ },
]
for (const c of badRepoLines) {
  test(`repo conf bad line: ${c.name} -> error naming file${c.line ? ' and line' : ''}`, () => {
    const file = conf(c.text, 'a.conf')
    assertConfigError(() => loadRepoConfig(file, '/web'), file, c.line, c.match)
  })
}

// ---------------------------------------------------------------- loadHome: the cross-file checks

function home(main: string, repos: Record<string, string>): string {
  const h = join(dir, `home${fileCounter++}`)
  mkdirSync(join(h, 'repos'), { recursive: true })
  writeFileSync(join(h, 'xync.conf'), main)
  for (const [name, text] of Object.entries(repos)) writeFileSync(join(h, 'repos', name), text)
  return h
}

test('home: DXYNC_HOME and --home; the flag wins', () => {
  assert.equal(resolveHome(undefined, { DXYNC_HOME: '/x/y' }), '/x/y')
  assert.equal(resolveHome('/flag', { DXYNC_HOME: '/x/y' }), '/flag')
  assert.match(resolveHome(undefined, {}), /\/dxync$/)
  const p = homePaths('/h')
  assert.equal(p.mainConfig, '/h/xync.conf')
  assert.equal(p.firewallConf, '/h/dtp/firewall.conf')
})

test('home: missing webroot folder names xync.conf and the webroot line', () => {
  const h = home('# c\nwebroot=/nonexistent/dsync-webroot\n', {})
  assertConfigError(() => loadHome(h), join(h, 'xync.conf'), 2, /nonexistent/)
})

test('home: no xync.conf says to run init', () => {
  const h = join(dir, 'empty-home')
  mkdirSync(h)
  assert.throws(() => loadHome(h), (e: unknown) => e instanceof DsyncError && e.exitCode === ExitCode.config && e.message.includes(h))
})

test('home: duplicate repo names across files name the second file and its repo= line', () => {
  const web = join(dir, 'web-dup')
  mkdirSync(web)
  const h = home(`webroot=${web}\n`, {
    'a.conf': `repo=rocky\nsave=${web}/a\n`,
    'b.conf': `# the same name again\nrepo=rocky\nsave=${web}/b\n`,
  })
  assertConfigError(() => loadHome(h), join(h, 'repos', 'b.conf'), 2, /a\.conf/)
})

test('home: save= outside webroot (absolute, via .., via a symlink) names file and save line', () => {
  const web = join(dir, 'web-out')
  mkdirSync(join(web, 'inside'), { recursive: true })
  mkdirSync(join(dir, 'elsewhere'), { recursive: true })
  symlinkSync(join(dir, 'elsewhere'), join(web, 'escape'))
  for (const save of [join(dir, 'elsewhere'), `${web}/../elsewhere`, join(web, 'escape'), web, '/']) {
    const h = home(`webroot=${web}\n`, { 'r.conf': `repo=r\ndsync=true\nsave=${save}\n` })
    assertConfigError(() => loadHome(h), join(h, 'repos', 'r.conf'), 3, /outside webroot/)
  }
})

test('home: save= inside webroot is fine even before the folder exists, and through a symlinked webroot', () => {
  const realWeb = join(dir, 'real-web')
  mkdirSync(join(realWeb, 'rocky'), { recursive: true })
  const linkWeb = join(dir, 'link-web')
  symlinkSync(realWeb, linkWeb)
  const h = home(`webroot=${linkWeb}\n`, {
    'rocky.conf': `repo=rocky\nsave=${linkWeb}/rocky\ndsync=true\n`,
    // A downstream repo whose folder the first sync will create.
    'new.conf': `repo=new\nsave=${linkWeb}/new/x\ndsync-url=dtp://127.0.0.2/new\n`,
    'rel.conf': 'repo=rel\nsave=rel\n',
    'notes.txt': 'not a config: ignored',
  })
  const loaded = loadHome(h)
  assert.deepEqual(loaded.repos.map(r => r.name).sort(), ['new', 'rel', 'rocky'])
})

// ---------------------------------------------------------------- dtp/list.conf

test('list.conf: folders relative to webroot, normalised, comments skipped', () => {
  const file = conf('# offered\n/kali\n\nubuntu/\n  /debian/main  \n/a//b\n')
  assert.deepEqual(loadListConf(file), ['kali', 'ubuntu', 'debian/main', 'a/b'])
})

for (const [name, text, line] of [
  ['".." segment', '/kali\n/../etc\n', 2],
  ['".." inside', '/kali/../ubuntu\n', 1],
  ['root itself', '/\n', 1],
  ['only dots', '..\n', 1],
] as const) {
  test(`list.conf bad line: ${name} -> error naming file and line`, () => {
    const file = conf(text)
    assertConfigError(() => loadListConf(file), file, line)
  })
}

// ---------------------------------------------------------------- dtp/firewall.conf

test('firewall.conf: no allow= (or an empty one) means unrestricted', () => {
  for (const text of ['', '# nothing\n', 'allow=\n', 'allow= , \n']) {
    const fw = loadFirewallConf(conf(text))
    assert.equal(fw.restricted, false, JSON.stringify(text))
    assert.equal(fw.allows('203.0.113.9'), true)
    assert.equal(fw.allows('2001:db8::9'), true)
  }
})

test('firewall.conf: IPv4, IPv6, CIDR of both families, repeated allow= lines', () => {
  const fw = loadFirewallConf(conf([
    'allow=192.0.2.10, 198.51.100.0/24',
    '# a second line adds to the first',
    'allow = 2001:db8:1::/48 ,::1',
    'allow=127.0.0.2',
  ].join('\n')))
  assert.equal(fw.restricted, true)
  assert.deepEqual(fw.entries, ['192.0.2.10', '198.51.100.0/24', '2001:db8:1::/48', '::1', '127.0.0.2'])
  const cases: [string, boolean][] = [
    ['192.0.2.10', true], ['192.0.2.11', false],
    ['198.51.100.0', true], ['198.51.100.255', true], ['198.51.101.0', false],
    ['127.0.0.2', true], ['127.0.0.1', false], ['127.0.0.3', false],
    ['2001:db8:1::1', true], ['2001:db8:1:ffff:ffff:ffff:ffff:ffff', true], ['2001:DB8:1::2', true],
    ['2001:db8:2::1', false], ['::1', true], ['::2', false],
    // Dual-stack sockets report IPv4 peers as IPv4-mapped IPv6.
    ['::ffff:192.0.2.10', true], ['::ffff:198.51.100.7', true], ['::ffff:192.0.2.11', false], ['::ffff:127.0.0.1', false],
    ['not-an-address', false], ['', false],
  ]
  for (const [addr, want] of cases) assert.equal(fw.allows(addr), want, addr)
})

test('firewall: /0 allows a whole family only; a host address with prefix bits set still matches its range', () => {
  const fw = makeFirewall(['0.0.0.0/0'])
  assert.equal(fw.allows('203.0.113.1'), true)
  assert.equal(fw.allows('::ffff:203.0.113.1'), true)
  assert.equal(fw.allows('2001:db8::1'), false)
  const host = makeFirewall(['10.1.2.3/8'])
  assert.equal(host.allows('10.200.0.1'), true)
  assert.equal(host.allows('11.0.0.1'), false)
})

test('firewall.conf: an unknown key (a misspelt allow=) is reported as a warning with file and line', () => {
  const file = conf('alow=192.0.2.1\n')
  const fw = loadFirewallConf(file)
  assert.equal(fw.restricted, false)
  assert.equal(fw.warnings?.length, 1)
  assert.ok(fw.warnings![0].includes(`${file}:1:`), fw.warnings![0])
})

for (const [name, text, line] of [
  ['hostname', 'allow=mirror.example.org\n', 1],
  ['IPv4 prefix 33', 'allow=192.0.2.0/33\n', 1],
  ['IPv6 prefix 129', '# x\nallow=2001:db8::/129\n', 2],
  ['empty prefix', 'allow=192.0.2.0/\n', 1],
  ['negative prefix', 'allow=192.0.2.0/-1\n', 1],
  ['two slashes', 'allow=192.0.2.0/24/8\n', 1],
  ['bad octet', 'allow=192.0.2.256\n', 1],
  ['bad entry on a repeated line', 'allow=192.0.2.1\nallow=192.0.2.1, 2001:db8::zz\n', 2],
  ['no "="', 'allow 192.0.2.1\n', 1],
] as const) {
  test(`firewall.conf bad entry: ${name} -> error naming file and line`, () => {
    const file = conf(text)
    assertConfigError(() => loadFirewallConf(file), file, line, /allow|malformed/)
  })
}

// ---------------------------------------------------------------- dtp/motd.conf

test('motd.conf: 경로= (DSYNC key), path=, rsyncd.conf default, none', () => {
  const rsyncd = conf('uid = nobody\nmotd file = /etc/rsync.motd\n[debian]\npath = /srv/debian\n', 'rsyncd.conf')
  assert.equal(loadMotdPath(conf('경로=/etc/welcome.motd\n'), rsyncd), '/etc/welcome.motd')
  assert.equal(loadMotdPath(conf('path = /etc/other.motd\n'), rsyncd), '/etc/other.motd')
  // 경로 is DSYNC's own key; it wins over path=.
  assert.equal(loadMotdPath(conf('path=/b\n경로=/a\n'), rsyncd), '/a')
  // No motd.conf, or one without a key: the rsyncd.conf default.
  assert.equal(loadMotdPath(join(dir, 'no-such-motd.conf'), rsyncd), '/etc/rsync.motd')
  assert.equal(loadMotdPath(conf('# nothing set\n'), rsyncd), '/etc/rsync.motd')
  // Explicitly empty: no welcome message, not even the rsyncd default.
  assert.equal(loadMotdPath(conf('경로=\n'), rsyncd), undefined)
  // Neither motd.conf nor rsyncd.conf: none.
  assert.equal(loadMotdPath(join(dir, 'no-such-motd.conf'), join(dir, 'no-such-rsyncd.conf')), undefined)
})

test('rsyncd.conf: only the global section counts; [global], case and inner whitespace as rsyncd reads them', () => {
  assert.equal(rsyncdMotdFile('[mod]\nmotd file = /x\n'), undefined)
  assert.equal(rsyncdMotdFile('# motd file = /commented\nMOTD File=/upper\n'), '/upper')
  assert.equal(rsyncdMotdFile('[global]\nmotd file = /g\n[mod]\n'), '/g')
  assert.equal(rsyncdMotdFile('motdfile = /joined\n'), '/joined')
  assert.equal(rsyncdMotdFile(undefined), undefined)
})

test('motd.conf: bad lines name file and line; unknown keys reach the warning callback', () => {
  const dup = conf('경로=/a\n경로=/b\n')
  assertConfigError(() => loadMotdPath(dup, '/nonexistent'), dup, 2)
  const noEq = conf('/etc/motd\n')
  assertConfigError(() => loadMotdPath(noEq, '/nonexistent'), noEq, 1)
  const unknown = conf('motd=/x\n')
  const warnings: string[] = []
  assert.equal(loadMotdPath(unknown, '/nonexistent', w => warnings.push(w)), undefined)
  assert.equal(warnings.length, 1)
  assert.ok(warnings[0].includes(`${unknown}:1:`), warnings[0])
})
