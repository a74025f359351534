import assert from 'node:assert/strict'
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadMainConfig } from '../src/config/main-config.js'
import { runCli, type RunResult } from '../testbed/cli.js'
import { makeHome, tempDir, writeTree } from '../testbed/tree.js'

// The exit codes `dsync --help` documents (cli/main.ts, src/errors.ts).
const EXIT = { ok: 0, failed: 1, usage: 2, config: 3, badData: 4, io: 5 }

const HANGUL = /[\uac00-\ud7a3]/

/** A bad-input failure: the documented code, one line on stderr naming what it must, no stack trace. */
function assertOneLineError(r: RunResult, code: number, mustName: string[]): void {
  const context = `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`
  assert.equal(r.code, code, context)
  assert.ok(!r.stderr.includes('    at '), `stack trace on stderr:\n${r.stderr}`)
  const lines = r.stderr.replace(/\n$/, '').split('\n')
  assert.equal(lines.length, 1, `exactly one line on stderr:\n${r.stderr}`)
  assert.match(lines[0], /^dsync: /)
  for (const s of mustName) assert.ok(lines[0].includes(s), `"${lines[0]}" should name ${s}`)
}

function files(): Record<string, string | Buffer> {
  return {
    'pool/a.deb': Buffer.alloc(5000, 1),
    'pool/b.deb': Buffer.alloc(70_000, 2),
    'dists/stable/Release': 'Origin: test\n',
  }
}

/** Every file under `root` with its bytes' hash: the "nothing on disk was lost" snapshot. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const path = rel ? `${rel}/${name}` : name
      const st = lstatSync(join(root, path))
      if (st.isDirectory()) walk(path)
      else if (st.isFile() && (st.mode & 0o444) !== 0) out.set(path, createHash('sha256').update(readFileSync(join(root, path))).digest('hex'))
      else out.set(path, `mode ${st.mode.toString(8)}`)
    }
  }
  walk('')
  return out
}

async function gendsyncOk(home: string): Promise<void> {
  const r = await runCli(['--home', home, 'gendsync'])
  assert.equal(r.code, 0, r.stderr)
}

// ---------------------------------------------------------------- surface

test('--help exits 0 and documents every exit code; -h too', async () => {
  for (const flag of ['--help', '-h']) {
    const r = await runCli([flag])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /Exit codes:/)
    for (const [code, words] of [[0, 'success'], [2, 'usage'], [3, 'configuration'], [4, 'bad data'], [5, 'filesystem'], [7, 'lock']] as const) {
      assert.match(r.stdout, new RegExp(`^\\s+${code}\\s+.*${words}`, 'm'), `exit code ${code} documented`)
    }
    for (const cmd of ['init', 'gendsync', 'verify', 'magnet']) assert.match(r.stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'))
  }
})

test('unknown command and unknown option exit 2 without a stack trace; no command runs the runner (DSYNC)', async () => {
  for (const args of [['frobnicate'], ['--bogus'], ['-frobnicate'], ['gendsync', '--no-such-option']]) {
    const r = await runCli(args)
    assert.equal(r.code, EXIT.usage, `${args.join(' ')}: ${r.stderr}`)
    assert.ok(!r.stderr.includes('    at '), r.stderr)
  }
  const r = await runCli(['frobnicate'])
  assert.match(r.stderr, /unknown command 'frobnicate'/)
  // Bare `dsync` is DSYNC's "sync every due repository": without a home that is a config error.
  const bare = await runCli([], { env: { DXYNC_HOME: '/nonexistent/dsync-home' } })
  assert.equal(bare.code, EXIT.config, bare.stderr)
  assert.match(bare.stderr, /nonexistent\/dsync-home/)
})

test('legacy -gendsync == gendsync, with --home before or after; DXYNC_HOME; --home beats DXYNC_HOME', async () => {
  const a = makeHome(join(tempDir(), 'a'), { rocky: files() })
  const runs = [
    await runCli(['--home', a.home, '--json', 'gendsync']),
    await runCli(['--home', a.home, '--json', '-gendsync']),
    await runCli(['-gendsync', '--json', '--home', a.home]),
    await runCli(['--json', '-gendsync'], { env: { DXYNC_HOME: a.home } }),
    await runCli(['--json', '--home', a.home, 'gendsync'], { env: { DXYNC_HOME: '/nonexistent/dsync-home' } }),
  ]
  const hashes = runs.map((r, i) => {
    assert.equal(r.code, 0, `run ${i}: ${r.stderr}`)
    return (JSON.parse(r.stdout.trim()) as { infoHash: string }).infoHash
  })
  assert.match(hashes[0], /^[0-9a-f]{40}$/)
  assert.deepEqual(new Set(hashes).size, 1, hashes.join(' '))
  // DXYNC_HOME is honoured: pointing it elsewhere fails naming that folder.
  const r = await runCli(['gendsync'], { env: { DXYNC_HOME: '/nonexistent/dsync-home' } })
  assertOneLineError(r, EXIT.config, ['/nonexistent/dsync-home'])
})

test('init writes a template home that loads, refuses to overwrite, and keeps existing dtp/ files', async () => {
  const base = tempDir()
  const home = join(base, 'home')
  const web = join(base, 'web')
  mkdirSync(web)
  const r = await runCli(['--home', home, 'init', '--webroot', web])
  assert.equal(r.code, 0, r.stderr)
  for (const f of ['xync.conf', 'repos/example.conf.sample', 'dtp/list.conf', 'dtp/firewall.conf', 'dtp/motd.conf']) {
    assert.ok(existsSync(join(home, f)), f)
  }
  const main = loadMainConfig(join(home, 'xync.conf'))
  assert.equal(main.webroot, web)
  assert.deepEqual(main.warnings, [])
  assert.deepEqual(main.trackers, [], 'no tracker by default: nothing may reach a public tracker')
  // The template home is usable as is: no published repo yet is a clear config error, not a crash.
  assertOneLineError(await runCli(['--home', home, 'gendsync']), EXIT.config, [join(home, 'repos')])

  writeFileSync(join(home, 'xync.conf'), `webroot=${web}\n# edited by the operator\n`)
  const before = snapshot(home)
  const again = await runCli(['--home', home, 'init', '--webroot', web])
  assertOneLineError(again, EXIT.config, [join(home, 'xync.conf')])
  assert.deepEqual(snapshot(home), before, 'a refused init changes nothing')

  // A home with dtp/ files but no xync.conf yet: init adds what is missing, keeps the rest.
  const home2 = join(base, 'home2')
  mkdirSync(join(home2, 'dtp'), { recursive: true })
  writeFileSync(join(home2, 'dtp', 'firewall.conf'), 'allow=127.0.0.2\n')
  const r2 = await runCli(['--home', home2, '--json', 'init', '--webroot', web])
  assert.equal(r2.code, 0, r2.stderr)
  assert.equal(readFileSync(join(home2, 'dtp', 'firewall.conf'), 'utf8'), 'allow=127.0.0.2\n')
  const created = (JSON.parse(r2.stdout) as { created: string[] }).created
  assert.ok(!created.includes(join(home2, 'dtp', 'firewall.conf')), created.join(' '))
  assert.ok(created.includes(join(home2, 'xync.conf')))
})

test('Korean messages when LANG=ko_KR.UTF-8, English otherwise', async () => {
  const missing = '/nonexistent/dsync-ko-home'
  const ko = await runCli(['--home', missing, 'gendsync'], { env: { LANG: 'ko_KR.UTF-8' } })
  assertOneLineError(ko, EXIT.config, [missing])
  assert.match(ko.stderr, HANGUL)
  const koAll = await runCli(['--home', missing, 'gendsync'], { env: { LANG: 'C', LC_ALL: 'ko_KR.UTF-8' } })
  assert.match(koAll.stderr, HANGUL)
  const en = await runCli(['--home', missing, 'gendsync'])
  assertOneLineError(en, EXIT.config, [missing])
  assert.doesNotMatch(en.stderr, HANGUL)
  // A config error in Korean still names file and line.
  const h = makeHome(tempDir(), {})
  writeFileSync(join(h.home, 'xync.conf'), `webroot=${h.webroot}\nport=99999\n`)
  const line = await runCli(['--home', h.home, 'gendsync'], { env: { LANG: 'ko_KR.UTF-8' } })
  assertOneLineError(line, EXIT.config, [`${join(h.home, 'xync.conf')}:2:`])
  assert.match(line.stderr, HANGUL)
})

test('magnet before gendsync is a clear error; after gendsync it prints the link', async () => {
  const h = makeHome(tempDir(), { rocky: files() })
  assertOneLineError(await runCli(['--home', h.home, 'magnet', 'rocky']), EXIT.badData, ['rocky', 'rocky.magnet', 'gendsync'])
  await gendsyncOk(h.home)
  const r = await runCli(['--home', h.home, 'magnet', 'rocky'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^magnet:\?xt=urn:btih:[0-9a-f]{40}/)
  assertOneLineError(await runCli(['--home', h.home, 'magnet', 'nosuch']), EXIT.config, ['nosuch', 'rocky'])
})

// ---------------------------------------------------------------- the bad-input table, through the CLI

interface BadCase {
  name: string
  /** Breaks a working, already generated home; returns what the error must name. */
  breakIt: (h: { home: string; webroot: string }) => string[]
  args?: string[]
  code: number
}

const badInputs: BadCase[] = [
  {
    name: 'missing webroot',
    breakIt: h => {
      writeFileSync(join(h.home, 'xync.conf'), `# moved\nwebroot=${h.webroot}-gone\n`)
      return [`${join(h.home, 'xync.conf')}:2:`, `${h.webroot}-gone`]
    },
    code: EXIT.config,
  },
  {
    name: 'repo path (save=) not found',
    breakIt: h => {
      writeFileSync(join(h.home, 'repos', 'zz.conf'), `repo=zz\ndsync=true\nsave=${h.webroot}/zz-missing\n`)
      return [`${join(h.home, 'repos', 'zz.conf')}:3:`, 'zz-missing']
    },
    code: EXIT.config,
  },
  {
    name: 'save= outside webroot',
    breakIt: h => {
      writeFileSync(join(h.home, 'repos', 'zz.conf'), `repo=zz\nsave=/etc\ndsync=true\n`)
      return [`${join(h.home, 'repos', 'zz.conf')}:2:`, '/etc', h.webroot]
    },
    code: EXIT.config,
  },
  {
    name: 'duplicate repo names',
    breakIt: h => {
      writeFileSync(join(h.home, 'repos', 'zz.conf'), `dsync=true\nrepo=rocky\nsave=${h.webroot}/rocky\n`)
      return [`${join(h.home, 'repos', 'zz.conf')}:2:`, 'rocky', join(h.home, 'repos', 'rocky.conf')]
    },
    code: EXIT.config,
  },
  {
    name: 'unknown repo name',
    breakIt: () => ['nosuch', 'rocky'],
    args: ['gendsync', 'nosuch'],
    code: EXIT.config,
  },
  {
    name: 'unpublished repo named',
    breakIt: h => {
      writeFileSync(join(h.home, 'repos', 'zz.conf'), `repo=zz\nsave=${h.webroot}/rocky\ndsync=false\n`)
      return [join(h.home, 'repos', 'zz.conf'), 'zz', 'dsync=true']
    },
    args: ['gendsync', 'zz'],
    code: EXIT.config,
  },
  {
    name: 'malformed line in xync.conf',
    breakIt: h => {
      writeFileSync(join(h.home, 'xync.conf'), `webroot=${h.webroot}\n\nthis line has no equals sign\n`)
      return [`${join(h.home, 'xync.conf')}:3:`]
    },
    code: EXIT.config,
  },
  {
    name: 'bad value in a repo conf',
    breakIt: h => {
      writeFileSync(join(h.home, 'repos', 'rocky.conf'), `repo=rocky\nsave=${h.webroot}/rocky\ndsync=ture\n`)
      return [`${join(h.home, 'repos', 'rocky.conf')}:3:`, 'dsync']
    },
    code: EXIT.config,
  },
]

for (const c of badInputs) {
  test(`bad input through the CLI: ${c.name} -> exit ${c.code}, one line, nothing lost`, async () => {
    const h = makeHome(tempDir(), { rocky: files() })
    await gendsyncOk(h.home)
    const must = c.breakIt(h)
    const before = snapshot(h.webroot)
    const r = await runCli(['--home', h.home, ...(c.args ?? ['gendsync'])])
    assertOneLineError(r, c.code, must)
    assert.deepEqual(snapshot(h.webroot), before, 'the failed run changed files under webroot')
  })
}

test('bad input through the CLI: unreadable file mid-scan -> exit 5 naming it; previous generation kept', async t => {
  const base = tempDir()
  const h = makeHome(base, { rocky: files() })
  await gendsyncOk(h.home)
  const secret = join(h.webroot, 'rocky', 'pool', 'c-secret.deb')
  writeTree(join(h.webroot, 'rocky'), { 'pool/c-secret.deb': 'not for you' })
  const asNobody = process.getuid?.() === 0
  if (asNobody) {
    // Root reads mode-000 files, so the CLI runs as nobody, owning the tree (so that it can
    // write .dsync/) but not allowed to read the one file.
    try {
      chownTree(base, 65534, 65534)
      chmodSync(base, 0o755)
    } catch (err) {
      t.skip(`cannot hand the temp tree to uid 65534: ${(err as Error).message}`)
      return
    }
  }
  chmodSync(secret, 0o000)
  const before = snapshot(join(h.webroot, 'rocky'))
  const ids = asNobody ? { uid: 65534, gid: 65534 } : {}
  const probe = await runCli(['--version'], ids)
  if (probe.code !== 0) {
    t.skip(`the CLI cannot run as uid 65534 here: ${probe.stderr.trim()}`)
    return
  }
  const r = await runCli(['--home', h.home, 'gendsync'], ids)
  assertOneLineError(r, EXIT.io, [secret])
  assert.deepEqual(snapshot(join(h.webroot, 'rocky')), before, 'data.dsync, .torrent and magnet unchanged')
  assert.ok(!existsSync(join(h.webroot, 'rocky', '.dsync', 'lock')), 'lock released after the failure')

  // An unreadable folder is the same kind of error, naming the folder.
  chmodSync(secret, 0o644)
  const locked = join(h.webroot, 'rocky', 'dists')
  chmodSync(locked, 0o000)
  try {
    const r2 = await runCli(['--home', h.home, 'gendsync'], ids)
    assertOneLineError(r2, EXIT.io, [locked])
  } finally {
    chmodSync(locked, 0o755)
  }
})

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid)
  if (lstatSync(path).isDirectory()) {
    chmodSync(path, 0o755)
    for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid)
  }
}

test('verify: a clean tree exits 0; a changed file exits 1 listing it', async () => {
  const h = makeHome(tempDir(), { rocky: files() })
  await gendsyncOk(h.home)
  const repo = join(h.webroot, 'rocky')
  const ok = await runCli(['verify', repo])
  assert.equal(ok.code, 0, ok.stderr)
  writeTree(repo, { 'pool/a.deb': Buffer.alloc(5000, 9) })
  const bad = await runCli(['verify', repo])
  assert.equal(bad.code, EXIT.failed, bad.stderr)
  assert.match(bad.stdout, /^content\tpool\/a\.deb/m)
})

test('verify: corrupt or hostile data.dsync -> exit 4, one line naming file:line; the file is left as it was', async () => {
  const h = makeHome(tempDir(), { rocky: files() })
  await gendsyncOk(h.home)
  const repo = join(h.webroot, 'rocky')
  const manifest = join(repo, '.dsync', 'data.dsync')
  const good = readFileSync(manifest)

  // One changed hex digit of a SHA-256: the line is well-formed, the END checksum catches it.
  const flipped = Buffer.from(good)
  const at = flipped.indexOf('\tpool/a.deb') - 1
  flipped[at] = flipped[at] === 0x30 ? 0x31 : 0x30
  writeFileSync(manifest, flipped)
  assertOneLineError(await runCli(['verify', repo]), EXIT.badData, [`${manifest}:`, 'checksum'])
  assert.ok(readFileSync(manifest).equals(flipped))

  // Truncated.
  writeFileSync(manifest, good.subarray(0, good.length - 30))
  assertOneLineError(await runCli(['verify', repo]), EXIT.badData, [`${manifest}:`])

  // Hostile but self-consistent: a '..' path with a correct checksum.
  const body = 'DSYNC-MANIFEST 1\npiece-length 16384\nentries 1\nfiles 1\nbytes 1\n\n' +
    `f\t0644\t1\t1700000000\t${'a'.repeat(64)}\t../../etc/passwd\n`
  writeFileSync(manifest, `${body}END\t${createHash('sha256').update(body).digest('hex')}\n`)
  assertOneLineError(await runCli(['verify', repo]), EXIT.badData, [`${manifest}:7:`])

  // Not a manifest at all.
  writeFileSync(manifest, '<html>404</html>\n')
  assertOneLineError(await runCli(['verify', repo]), EXIT.badData, [`${manifest}:1:`])

  // gendsync replaces a corrupt data.dsync with a good one (it is derived from the tree).
  await gendsyncOk(h.home)
  assert.ok(readFileSync(manifest).equals(good))
})

test('verify: a folder without data.dsync is a clear error', async () => {
  const dir = tempDir()
  assertOneLineError(await runCli(['verify', dir]), EXIT.badData, [join(dir, '.dsync', 'data.dsync')])
})

test('an unknown key is a one-line warning naming file and line; the command still succeeds', async () => {
  const h = makeHome(tempDir(), { rocky: files() }, 'future-option=1\n')
  const r = await runCli(['--home', h.home, 'gendsync'])
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stderr.replace(/\n$/, '').split('\n')
  assert.equal(lines.length, 1, r.stderr)
  assert.ok(lines[0].includes(`${join(h.home, 'xync.conf')}:2:`), lines[0])
  assert.match(lines[0], /future-option/)
})
