import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { comparePaths, isSafeRelativePath, sortEntries, type ManifestEntry } from '../src/manifest/entry.js'
import { escapePath, unescapePath } from '../src/manifest/escape.js'
import { ManifestParser, parseManifest, parseManifestFile, serializeManifest } from '../src/manifest/format.js'
import { DsyncError, ExitCode } from '../src/errors.js'

const FILE = '/srv/web/rocky/.dsync/data.dsync'
const sha = (s: string): Buffer => createHash('sha256').update(s).digest()
const hex = (s: string): string => sha(s).toString('hex')

const dir = (path: string): ManifestEntry => ({ type: 'd', path, mode: 0o755, size: 0, mtime: 1_700_000_000 })
const file = (path: string, content: string, extra: Partial<ManifestEntry> = {}): ManifestEntry =>
  ({ type: 'f', path, mode: 0o644, size: Buffer.byteLength(content), mtime: 1_700_000_000, sha256: sha(content), ...extra })
const link = (path: string, target: string): ManifestEntry =>
  ({ type: 'l', path, mode: 0o777, size: Buffer.byteLength(target), mtime: 1_700_000_000, target })
const hard = (path: string, target: string, content: string): ManifestEntry =>
  ({ type: 'h', path, mode: 0o644, size: Buffer.byteLength(content), mtime: 1_700_000_000, sha256: sha(content), target })

/** An entry as a plain object (the client parser's files are SlabEntry objects, whose digest is a getter). */
const plain = (e: ManifestEntry): ManifestEntry => ({
  type: e.type, path: e.path, mode: e.mode, size: e.size, mtime: e.mtime,
  ...(e.sha256 ? { sha256: Buffer.from(e.sha256) } : {}), ...(e.target !== undefined ? { target: e.target } : {}),
})

function roundTrip(entries: ManifestEntry[], pieceLength = 32768): ManifestEntry[] {
  const sorted = sortEntries(entries)
  const data = serializeManifest(sorted, pieceLength)
  const m = parseManifest(data, FILE)
  assert.deepEqual(m.entries, sorted)
  assert.equal(m.header.pieceLength, pieceLength)
  assert.equal(m.header.entries, sorted.length)
  // Serialising what was parsed gives the same bytes: one tree, one data.dsync.
  assert.ok(serializeManifest(m.entries, pieceLength).equals(data))
  return m.entries
}

test('round trip: files, dirs, symlinks (absolute, relative, dangling), hardlinks, modes, negative mtime', () => {
  const entries = [
    dir('pool'),
    file('pool/a.deb', 'aaa'),
    hard('pool/b.deb', 'pool/a.deb', 'aaa'),
    file('pool/empty', ''),
    file('pool/setuid', 'x', { mode: 0o4755 }),
    file('old', 'y', { mtime: -86400 }),
    link('latest', 'pool/a.deb'),
    link('abs', '/etc/passwd'),
    link('up', '../../elsewhere'),
    link('dangling', 'no such thing'),
    dir('pool/sub'),
    file('pool/sub/big.iso', 'z'.repeat(1000), { size: 1000 }),
  ]
  const parsed = roundTrip(entries)
  const m = parseManifest(serializeManifest(parsed, 32768), FILE)
  assert.equal(m.header.files, 5)
  assert.equal(m.header.bytes, 3 + 0 + 1 + 1 + 1000)
  assert.equal(m.digest.length, 32)
})

test('round trip: escaping of tab, newline, CR, backslash, every control char, DEL; UTF-8 and spaces as is', () => {
  const names = [
    'tab\there', 'new\nline', 'cr\rhere', 'back\\slash', '\\t literal', 'trailing\\',
    'spaces  in name ', ' leading', 'del\x7f', 'esc\x1b[0m', '한국어 파일.txt', 'emoji 😀', 'x\\x41',
  ]
  for (let c = 1; c < 0x20; c++) names.push(`c${c.toString(16)}-${String.fromCharCode(c)}`)
  const entries = [dir('d'), ...names.map(n => file(`d/${n}`, n)), link('d/zz-link', 'to\ttab\nnl\\')]
  const parsed = roundTrip(entries)
  // Every entry is exactly one line.
  const text = serializeManifest(parsed, 32768).toString('utf8')
  // magic, 4 header lines, the empty line, the entries, END, and the empty string after the last \n
  assert.equal(text.split('\n').length, 6 + entries.length + 2)
  assert.ok(text.includes('d/한국어 파일.txt'), 'UTF-8 is written as is')
  assert.ok(text.includes('d/tab\\there'))
  assert.ok(text.includes('d/del\\x7f'))
  assert.ok(text.includes('d/c1-\\x01'))
})

test('escapePath/unescapePath are inverse; malformed escapes are refused', () => {
  for (let c = 0; c < 0x80; c++) {
    const s = `a${String.fromCharCode(c)}b`
    assert.equal(unescapePath(escapePath(s)), s, `char ${c}`)
  }
  for (const bad of ['a\\', 'a\\q', 'a\\x4', 'a\\xZZ', 'a\\X41']) assert.equal(unescapePath(bad), undefined, bad)
})

test('sort order is UTF-8 bytes, not UTF-16 code units', () => {
  // U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
  const a = 'x\uff5e'
  const b = 'x😀'
  assert.ok(comparePaths(a, b) < 0)
  assert.ok(a > b, 'JavaScript orders them the other way')
  assert.deepEqual(sortEntries([{ path: b }, { path: a }]).map(e => e.path), [a, b])
  roundTrip([file(b, '1'), file(a, '2')])
})

test('isSafeRelativePath', () => {
  for (const ok of ['a', 'a/b', '.hidden', 'a/..b', '...', 'a b/c']) assert.ok(isSafeRelativePath(ok), ok)
  for (const bad of ['', '/a', 'a/', 'a//b', '.', '..', 'a/../b', 'a/./b', 'a\0b', '../a']) assert.ok(!isSafeRelativePath(bad), bad)
})

test('streaming: ManifestParser accepts one line at a time', () => {
  const data = serializeManifest([dir('a'), file('a/b', 'b')], 16384)
  const p = new ManifestParser(FILE)
  const lines = data.toString('utf8').split('\n')
  lines.pop()
  for (const l of lines) p.push(Buffer.from(l, 'utf8'))
  assert.equal(p.finish().entries.length, 2)
})

// ---------------------------------------------------------------- hostile and corrupt input

interface Raw {
  header?: string[]
  entries: string[]
  /** Replace the END line (default: the correct checksum). */
  end?: string | null
  magic?: string
}

/** A data.dsync with a correct header and checksum around whatever entry lines are given. */
function build(r: Raw): Buffer {
  let files = 0
  let bytes = 0
  for (const e of r.entries) {
    const f = e.split('\t')
    if (f[0] === 'f') {
      files++
      bytes += /^\d+$/.test(f[2]) ? Number(f[2]) : 0
    }
  }
  const header = r.header ?? ['piece-length 16384', `entries ${r.entries.length}`, `files ${files}`, `bytes ${bytes}`]
  const body = Buffer.from([r.magic ?? 'DSYNC-MANIFEST 1', ...header, '', ...r.entries].join('\n') + '\n', 'utf8')
  if (r.end === null) return body
  const end = r.end ?? `END\t${createHash('sha256').update(body).digest('hex')}`
  return Buffer.concat([body, Buffer.from(end + '\n')])
}

const H = hex('x')
const F = (path: string, h = H, size = 1) => `f\t0644\t${size}\t1700000000\t${h}\t${path}`
const D = (path: string) => `d\t0755\t0\t1700000000\t-\t${path}`
const L = (path: string, target: string) => `l\t0777\t${Buffer.byteLength(target)}\t1700000000\t-\t${path}\t${target}`
const HL = (path: string, target: string, h = H, size = 1) => `h\t0644\t${size}\t1700000000\t${h}\t${path}\t${target}`
// Entry lines start at line 7 (magic, four header lines, the empty line).
const E = 7

test('build() itself yields a valid manifest (so every refusal below is for its own reason)', () => {
  const m = parseManifest(build({ entries: [D('a'), F('a/b'), HL('a/c', 'a/b'), L('l', 'a/b')] }), FILE)
  assert.equal(m.entries.length, 4)
})

const hostile: { name: string; data: () => Buffer; line: number; reason: RegExp }[] = [
  { name: '".." segment', data: () => build({ entries: [D('a'), F('a/../../etc/passwd')] }), line: E + 1, reason: /path/ },
  { name: 'bare ".."', data: () => build({ entries: [F('..')] }), line: E, reason: /path/ },
  { name: '"." segment', data: () => build({ entries: [D('a'), F('a/./b')] }), line: E + 1, reason: /path/ },
  { name: 'absolute path', data: () => build({ entries: [F('/etc/passwd')] }), line: E, reason: /path/ },
  { name: 'empty segment', data: () => build({ entries: [D('a'), F('a//b')] }), line: E + 1, reason: /path/ },
  { name: 'empty path', data: () => build({ entries: [F('')] }), line: E, reason: /path/ },
  { name: 'trailing slash', data: () => build({ entries: [D('a/')] }), line: E, reason: /path/ },
  { name: 'escaped NUL in path', data: () => build({ entries: [F('a\\x00b')] }), line: E, reason: /path/ },
  { name: 'raw NUL in path', data: () => build({ entries: [F('a\0b')] }), line: E, reason: /path/ },
  { name: 'escaped slash-dot-dot (\\x2f..)', data: () => build({ entries: [D('a'), F('a\\x2f..')] }), line: E + 1, reason: /path/ },
  { name: 'unescaped control char in path', data: () => build({ entries: [F('a\x01b')] }), line: E, reason: /escaped/ },
  { name: 'non-canonical escape \\x41', data: () => build({ entries: [F('\\x41')] }), line: E, reason: /escaped/ },
  { name: 'malformed escape', data: () => build({ entries: [F('a\\q')] }), line: E, reason: /path/ },
  { name: 'entry under the reserved .dsync/', data: () => build({ entries: [D('.dsync'), F('.dsync/data.dsync')] }), line: E, reason: /reserved/ },
  { name: 'unsorted entries', data: () => build({ entries: [F('b'), F('a')] }), line: E + 1, reason: /sorted/ },
  { name: 'duplicate entries', data: () => build({ entries: [F('a'), F('a')] }), line: E + 1, reason: /sorted or repeated/ },
  { name: 'dir and file of one name', data: () => build({ entries: [D('a'), F('a')] }), line: E + 1, reason: /repeated/ },
  { name: 'parent not listed', data: () => build({ entries: [F('a/b')] }), line: E, reason: /parent/ },
  { name: 'parent is a symlink', data: () => build({ entries: [L('a', '/etc'), F('a/passwd')] }), line: E + 1, reason: /parent/ },
  { name: 'parent is a file', data: () => build({ entries: [F('a'), F('a/b')] }), line: E + 1, reason: /parent/ },
  { name: 'hardlink to unknown file', data: () => build({ entries: [HL('a', 'nowhere')] }), line: E, reason: /hardlink/ },
  { name: 'hardlink to a later file', data: () => build({ entries: [HL('a', 'b'), F('b')] }), line: E, reason: /hardlink/ },
  { name: 'hardlink to a directory', data: () => build({ entries: [D('a'), HL('b', 'a')] }), line: E + 1, reason: /hardlink/ },
  { name: 'hardlink with another SHA-256', data: () => build({ entries: [F('a'), HL('b', 'a', hex('other'))] }), line: E + 1, reason: /hardlink/ },
  { name: 'hardlink with another size', data: () => build({ entries: [F('a'), HL('b', 'a', H, 2)] }), line: E + 1, reason: /hardlink/ },
  { name: 'hardlink without target', data: () => build({ entries: [F('a'), `h\t0644\t1\t1700000000\t${H}\tb`] }), line: E + 1, reason: /target/ },
  { name: 'symlink with empty target', data: () => build({ entries: [`l\t0777\t0\t1700000000\t-\ta\t`] }), line: E, reason: /target/ },
  { name: 'symlink size not its target length', data: () => build({ entries: [`l\t0777\t9\t1700000000\t-\ta\tb`] }), line: E, reason: /symlink/ },
  { name: 'symlink with a SHA-256', data: () => build({ entries: [`l\t0777\t1\t1700000000\t${H}\ta\tb`] }), line: E, reason: /SHA-256/ },
  { name: 'file with a target', data: () => build({ entries: [`${F('a')}\tb`] }), line: E, reason: /target/ },
  { name: 'bad SHA-256 (short)', data: () => build({ entries: [F('a', H.slice(2))] }), line: E, reason: /SHA-256/ },
  { name: 'bad SHA-256 (uppercase)', data: () => build({ entries: [F('a', H.toUpperCase())] }), line: E, reason: /SHA-256/ },
  { name: 'bad SHA-256 (dash for a file)', data: () => build({ entries: [F('a', '-')] }), line: E, reason: /SHA-256/ },
  { name: 'bad mode (3 digits)', data: () => build({ entries: [`f\t644\t1\t1700000000\t${H}\ta`] }), line: E, reason: /mode/ },
  { name: 'bad mode (not octal)', data: () => build({ entries: [`f\t0648\t1\t1700000000\t${H}\ta`] }), line: E, reason: /mode/ },
  { name: 'bad size', data: () => build({ entries: [`f\t0644\t-1\t1700000000\t${H}\ta`] }), line: E, reason: /size/ },
  { name: 'bad mtime', data: () => build({ entries: [`f\t0644\t1\tyesterday\t${H}\ta`] }), line: E, reason: /mtime/ },
  { name: 'unknown entry type', data: () => build({ entries: [`p\t0644\t0\t1700000000\t-\tfifo`] }), line: E, reason: /type/ },
  { name: 'too few fields', data: () => build({ entries: ['f\t0644\t1'] }), line: E, reason: /fields/ },
  { name: 'empty line among entries', data: () => build({ entries: [F('a'), '', F('b')] }), line: E + 1, reason: /fields/ },
  { name: 'directory with a size', data: () => build({ entries: ['d\t0755\t4096\t1700000000\t-\ta'] }), line: E, reason: /directory/ },
  // File lines the client reads from their bytes (format.ts, fileLineFast): each check it makes there.
  { name: 'size past 2^53', data: () => build({ entries: [F('a', H, 9007199254740993)], header: ['piece-length 16384', 'entries 1', 'files 1', 'bytes 1'] }), line: E, reason: /size/ },
  { name: 'size of 17 digits', data: () => build({ entries: [`f\t0644\t00000000000000001\t1700000000\t${H}\ta`] }), line: E, reason: /size/ },
  { name: 'mtime of 17 digits', data: () => build({ entries: [`f\t0644\t1\t17000000000000000\t${H}\ta`] }), line: E, reason: /mtime/ },
  { name: 'mtime a lone minus', data: () => build({ entries: [`f\t0644\t1\t-\t${H}\ta`] }), line: E, reason: /mtime/ },
  { name: 'mtime empty', data: () => build({ entries: [`f\t0644\t1\t\t${H}\ta`] }), line: E, reason: /mtime/ },
  { name: 'bad mode (8)', data: () => build({ entries: [`f\t0800\t1\t1700000000\t${H}\ta`] }), line: E, reason: /mode/ },
  { name: 'bad SHA-256 (not hex)', data: () => build({ entries: [F('a', 'g'.repeat(64))] }), line: E, reason: /SHA-256/ },
  { name: 'bad SHA-256 (65 digits)', data: () => build({ entries: [F('a', `${H}0`)] }), line: E, reason: /SHA-256/ },
  { name: 'unescaped DEL in path', data: () => build({ entries: [F('a\x7fb')] }), line: E, reason: /escaped/ },
  { name: 'a file named .dsync', data: () => build({ entries: [F('.dsync')] }), line: E, reason: /reserved/ },
  { name: 'last segment ".."', data: () => build({ entries: [D('a'), F('a/..')] }), line: E + 1, reason: /path/ },
  { name: 'last segment "."', data: () => build({ entries: [D('a'), F('a/.')] }), line: E + 1, reason: /path/ },
  { name: 'a path before a shorter one it starts with', data: () => build({ entries: [D('a'), F('a/bc'), F('a/b')] }), line: E + 2, reason: /sorted/ },
  { name: 'a file of an unlisted folder after one of a listed folder as long', data: () => build({ entries: [D('a'), D('a/b'), F('a/b/c'), F('a/c/d')] }), line: E + 3, reason: /parent/ },
  { name: 'a file of an unlisted folder at the top', data: () => build({ entries: [D('a'), F('a/b'), F('c/d')] }), line: E + 2, reason: /parent/ },
  {
    name: 'header count mismatch (entries)',
    data: () => build({ header: ['piece-length 16384', 'entries 5', 'files 1', 'bytes 1'], entries: [F('a')] }),
    line: E + 1, reason: /entries/,
  },
  {
    name: 'header count mismatch (bytes)',
    data: () => build({ header: ['piece-length 16384', 'entries 1', 'files 1', 'bytes 100'], entries: [F('a')] }),
    line: E + 1, reason: /bytes/,
  },
  {
    name: 'header lacks a field',
    data: () => build({ header: ['piece-length 16384', 'entries 1', 'files 1'], entries: [F('a')] }),
    line: 5, reason: /bytes/,
  },
  {
    name: 'header field repeated',
    data: () => build({ header: ['piece-length 16384', 'entries 1', 'entries 1', 'files 1', 'bytes 1'], entries: [F('a')] }),
    line: 4, reason: /repeated/,
  },
  {
    name: 'piece length not a power of two',
    data: () => build({ header: ['piece-length 20000', 'entries 0', 'files 0', 'bytes 0'], entries: [] }),
    line: 2, reason: /piece length/,
  },
  {
    name: 'malformed header line',
    data: () => build({ header: ['piece-length: 16384'], entries: [] }),
    line: 2, reason: /header/,
  },
  { name: 'checksum mismatch', data: () => build({ entries: [F('a')], end: `END\t${'0'.repeat(64)}` }), line: E + 1, reason: /checksum/ },
  {
    name: 'one byte flipped after the checksum was made',
    data: () => {
      const b = build({ entries: [F('a')] })
      b[b.indexOf('1700000000')] = '2'.charCodeAt(0)
      return b
    },
    line: E + 1, reason: /checksum/,
  },
  { name: 'END with a malformed checksum', data: () => build({ entries: [F('a')], end: 'END\tnope' }), line: E + 1, reason: /checksum/ },
  { name: 'truncated: no END line', data: () => build({ entries: [F('a')], end: null }), line: E, reason: /END/ },
  { name: 'truncated mid-line', data: () => build({ entries: [F('a')] }).subarray(0, 80), line: E, reason: /END/ },
  { name: 'empty file', data: () => Buffer.alloc(0), line: 1, reason: /END/ },
  {
    name: 'data after END',
    data: () => Buffer.concat([build({ entries: [F('a')] }), Buffer.from(`${F('b')}\n`)]),
    line: E + 2, reason: /after END/,
  },
  {
    name: 'data after END without a newline',
    data: () => Buffer.concat([build({ entries: [F('a')] }), Buffer.from('junk')]),
    line: E + 2, reason: /after END/,
  },
  { name: 'unsupported version', data: () => build({ magic: 'DSYNC-MANIFEST 2', entries: [] }), line: 1, reason: /version/ },
  { name: 'not a manifest at all', data: () => Buffer.from('<html>\n<body>404</body>\n</html>\n'), line: 1, reason: /not a data\.dsync/ },
  { name: 'binary garbage', data: () => Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x01, 0x0a]), line: 1, reason: /UTF-8|not a data/ },
  {
    name: 'invalid UTF-8 in a path',
    data: () => {
      const b = build({ entries: [F('aXY')] })
      const at = b.indexOf('aXY') + 1
      b[at] = 0xc3
      b[at + 1] = 0x28
      return b
    },
    line: E, reason: /UTF-8/,
  },
  { name: 'huge line', data: () => build({ entries: [F('a'.repeat(30_000))] }), line: E, reason: /too long/ },
  {
    name: 'huge line without any newline',
    data: () => Buffer.alloc(1 << 20, 0x61),
    line: 1, reason: /END|too long/,
  },
]

/** parseManifestFile (the client's list, rows of a table) of `data` written to a file. */
function parseAsClient(data: Buffer): ReturnType<typeof parseManifestFile> {
  const d = mkdtempSync(join(tmpdir(), 'dsync-format-'))
  try {
    writeFileSync(join(d, 'data.dsync'), data)
    return parseManifestFile(join(d, 'data.dsync'), FILE)
  } finally {
    rmSync(d, { recursive: true, force: true })
  }
}

for (const c of hostile) {
  // Both readers: parseManifest (hosts, tools) and the client's parseManifestFile, which reads
  // plain file lines from their bytes (format.ts, fileLineFast) and must refuse what the other does.
  test(`refused: ${c.name} -> DsyncError naming file:line`, () => {
    for (const parse of [(d: Buffer) => parseManifest(d, FILE), parseAsClient]) {
      assert.throws(() => parse(c.data()), (err: unknown) => {
        assert.ok(err instanceof DsyncError, `expected DsyncError, got ${String(err)}`)
        assert.equal(err.exitCode, ExitCode.badData)
        assert.ok(!err.message.includes('\n'), err.message)
        assert.ok(err.message.startsWith(`${FILE}:${c.line}: `), `"${err.message}" should start with ${FILE}:${c.line}`)
        assert.match(err.message, c.reason)
        return true
      })
    }
  })
}

test('the client reads file lines at the limits of each field as parseManifest does', () => {
  const entries = [
    D('a'), `f\t0000\t007\t-0\t${H}\ta/b`, `f\t7777\t9007199254740000\t9999999999999999\t${H}\ta/c`,
    `f\t0644\t0\t-9007199254740991\t${'0123456789abcdef'.repeat(4)}\ta/d`, F('a/.d'), F('a/..d'), F('a/...'), F('a/x y~!'),
    D('a/b_'), F('a/b_/b_'), D('a/e'), F('a/e/e'), F('a0'), F('.dsyncx'), F('.dsyn'),
  ].sort((x, y) => Buffer.compare(Buffer.from(x.split('\t')[5]), Buffer.from(y.split('\t')[5])))
  const data = build({ entries, header: ['piece-length 16384', `entries ${entries.length}`, 'files 12', 'bytes 9007199254740016'] })
  const general = parseManifest(data, FILE).entries
  const client = parseAsClient(data).entries.map(plain)
  assert.deepEqual(client, general)
  const at = (path: string) => client.find(e => e.path === path)!
  assert.ok(Object.is(at('a/b').mtime, -0), 'mtime -0 kept as -0')
  assert.equal(at('a/b').size, 7)
  assert.equal(at('a/c').mtime, 9999999999999999)
  assert.equal(at('a/b').mode, 0)
  assert.equal(at('a/c').mode, 0o7777)
})

test('a version-1 reader ignores header fields it does not know', () => {
  const m = parseManifest(build({
    header: ['piece-length 16384', 'entries 1', 'generator-hint 7', 'files 1', 'bytes 1'], entries: [F('a')],
  }), FILE)
  assert.equal(m.entries.length, 1)
})

test('parseManifestFile reads a list a chunk at a time: the same entries as parseManifest, digests read from their slabs; a cut or overlong line refused with its line', () => {
  // ~40,000 entries with paths of varied length: lines cross the 1 MiB read boundaries at many offsets.
  const entries: ManifestEntry[] = [dir('pool')]
  for (let i = 0; i < 40_000; i++) entries.push(file(`pool/${'x'.repeat(i % 97)}-${i}.deb`, `content ${i}`, i % 1000 === 7 ? { mode: 0o7755 } : {}))
  // The client's entries pack type, mode and digest place into one integer: a hardlink and every mode bit come back.
  entries.push(hard('pool/zz-hard.deb', 'pool/-0.deb', 'content 0'))
  // A file's path is its folder's path and its own name, read back from its record: at the top,
  // folders deep, escaped names (tab, backslash, newline) and UTF-8 beyond ASCII, up to a long name.
  entries.push(file('top.deb', 'top'), file('\u00fcber\t\\na\nme.deb', 'escaped at the top'), dir('pool/a'), dir('pool/a/b\u00e4r'),
    dir('pool/a/b\u00e4r/\u{1F600}'), file('pool/a/b\u00e4r/\u{1F600}/\u65e5\u672c.deb', 'deep'), file('pool/a/b\u00e4r/t\tab', 'tab'),
    file(`pool/a/${'n'.repeat(4000)}`, 'long'), hard('pool/a/b\u00e4r/zz', 'pool/a/b\u00e4r/t\tab', 'tab'),
    // Names that start as their folder's name does (a pool's `pkg/pkg_1.0_all.deb`): all of it, more
    // than 255 characters of it, and a start that would end inside a surrogate pair.
    file('pool/a/b\u00e4r/b\u00e4r', 'same name'), file('pool/a/b\u00e4r/b\u00e4r_1.0_all.deb', 'package'), file('pool/a/b\u00e4r/\u{1F600}/\u{1F601}.deb', 'pair'),
    dir(`pool/a/${'q'.repeat(300)}`), file(`pool/a/${'q'.repeat(300)}/${'q'.repeat(290)}\u00e9.deb`, 'long start'))
  const sorted = sortEntries(entries)
  const data = serializeManifest(sorted, 32768)
  assert.ok(data.length > 3 << 20, `the list spans several chunks (${data.length} bytes)`)
  const dir_ = mkdtempSync(join(tmpdir(), 'dsync-format-'))
  try {
    const path = join(dir_, 'data.dsync')
    writeFileSync(path, data)
    const fromFile = parseManifestFile(path, FILE)
    assert.deepEqual(fromFile.entries.map(plain), parseManifest(data, FILE).entries)
    assert.deepEqual(fromFile.entries.map(plain), sorted)
    // The client's entries keep no digest view (96 bytes each) and no path string of their own:
    // each read makes one from the record slab (digest and name), and reads the same bytes every
    // time, across the slabs' boundaries (64 KiB of records each).
    assert.equal(fromFile.entries.filter(e => e.type === 'h').length, 2)
    for (const [i, e] of fromFile.entries.entries()) {
      if (e.type === 'd') continue
      assert.equal(Object.hasOwn(e, 'sha256'), false, `${e.path} holds no digest view`)
      assert.equal(Object.hasOwn(e, 'path'), false, `${e.path} holds no path string`)
      assert.equal(e.path, sorted[i].path)
      assert.ok(e.sha256!.equals(sorted[i].sha256!), `${e.path}'s digest`)
      assert.notEqual(e.sha256, e.sha256)
    }
    // Cut inside the last entry line, then a line far over the limit: each refused, naming the line.
    const lines = data.toString('utf8').split('\n')
    writeFileSync(path, data.subarray(0, data.length - lines[lines.length - 2].length - 10))
    assert.throws(() => parseManifestFile(path, FILE), (err: DsyncError) => err.exitCode === ExitCode.badData && /missing END line/.test(err.message) && err.message.includes(FILE))
    writeFileSync(path, Buffer.concat([data.subarray(0, 200), Buffer.alloc(3 << 20, 0x61)]))
    assert.throws(() => parseManifestFile(path, FILE), (err: DsyncError) => err.exitCode === ExitCode.badData && /line too long/.test(err.message))
  } finally {
    rmSync(dir_, { recursive: true, force: true })
  }
})
