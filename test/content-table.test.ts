import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { contentPath, contentTable, tableEntries } from '../src/manifest/content-table.js'
import type { ManifestEntry } from '../src/manifest/entry.js'
import { serializeManifest } from '../src/manifest/format.js'
import { indexLines } from '../src/manifest/manifest-lines.js'
import { InfoWriter } from '../src/torrent/encode-info.js'

/**
 * tableEntries (the client splice's second pass: src/sync/shard-windows.ts) gives each content
 * file's entry bytes in a torrent's files list from data.dsync's path field alone. A wrong size
 * shifts every later entry the splice copies from a previous shard torrent, so each is checked
 * against the bytes InfoWriter (what shard torrents are encoded with) writes for that file:
 * plain, deep, single-segment, non-ASCII and escaped paths, segment and size lengths around
 * each decimal digit boundary.
 */
const P = 1 << 18

test('tableEntries gives the bytes each content file\'s entry takes in a shard torrent', () => {
  const seg = (n: number) => 'x'.repeat(n)
  const paths = [
    'a', 'Release', `pool/${seg(9)}/${seg(10)}`, `pool/${seg(99)}/${seg(100)}.deb`, `${seg(999)}/${seg(1000)}`,
    'pool/main/한글/패키지_1.0_amd64.deb', 'pool/back\\slash/file', 'pool/tab\there', 'pool/new\nline/x', 'pool/ünï/çødé.deb',
    'a/b/c/d/e/f/g/h/i/j/k', 'dists/stable/main/binary-amd64/Packages.xz',
  ].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  const sizes = [1, 9, 10, 99, 100, 4095, 4096, 999_999, 1_000_000, 2 ** 31, 10_000_000_000, 7]
  const entries: ManifestEntry[] = paths.map((path, i) => ({
    type: 'f', path, mode: 0o644, size: sizes[i % sizes.length], mtime: 1_700_000_000, sha256: createHash('sha256').update(path).digest(),
  }))
  // A file of size 0 is not a content file: the table skips it.
  entries.push({ type: 'f', path: 'zz/empty', mode: 0o644, size: 0, mtime: 1_700_000_000, sha256: createHash('sha256').digest() })
  const lines = indexLines(serializeManifest(entries, P))
  assert.equal(typeof lines, 'object', String(lines))
  const ct = contentTable(lines as Exclude<typeof lines, string>)
  assert.equal(ct.count, paths.length)
  const got = tableEntries(ct)
  const empty = new InfoWriter(64).finish('n', P, Buffer.alloc(0)).length
  for (let c = 0; c < ct.count; c++) {
    const path = contentPath(ct, c)
    assert.equal(path.toString('utf8'), paths[c], 'the path as the table reads it back')
    const w = new InfoWriter(64)
    w.entry(path, ct.length[c])
    assert.equal(got[c], w.finish('n', P, Buffer.alloc(0)).length - empty, `entry bytes of ${JSON.stringify(paths[c])} (${ct.length[c]} bytes)`)
  }
})
