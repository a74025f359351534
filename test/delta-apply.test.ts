import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { applyDelta, makeDelta, parseDelta } from '../src/generation/delta.js'
import { applyDeltas, applyDeltasToFile, bufferReader, fileReader } from '../src/generation/delta-apply.js'
import { fileLines, keyAt, lowerBoundIn } from '../src/sync/list-lines.js'
import { fileSha256 } from '../src/util/file-sha256.js'
import type { ManifestEntry } from '../src/manifest/entry.js'
import { serializeManifest } from '../src/manifest/format.js'
import { indexLines, type LineTable } from '../src/manifest/manifest-lines.js'
import { tempDir } from '../testbed/tree.js'

/**
 * The chain applied as a stream (src/generation/delta-apply.ts): DEST's list is read in 1 MiB
 * chunks and merged with the deltas' lines, so the lists here are a few MB, with changes on
 * both sides of chunk boundaries, at the first and last paths, past the last, and at an
 * escaped path. The result must be, byte for byte, what applying the deltas one after the
 * other gives (the list gendsync wrote), and DEST's lines at the changed paths must be the
 * old list's.
 */
const T = 1700000000
const sha = (s: string) => createHash('sha256').update(s).digest()

function generation(g: number): ManifestEntry[] {
  const out: ManifestEntry[] = [{ type: 'd', path: 'pool', mode: 0o755, size: 0, mtime: T + g }]
  for (let d = 0; d < 40; d++) {
    const dir = `pool/d${String(d).padStart(2, '0')}`
    out.push({ type: 'd', path: dir, mode: 0o755, size: 0, mtime: T })
    for (let i = 0; i < 600; i++) {
      const n = d * 600 + i
      // Each generation changes every 97th file from its own offset, removes a few, adds a few.
      if (n % 211 === g) continue
      const changed = (n + g * 13) % 97 === 0 ? g : 0
      out.push({ type: 'f', path: `${dir}/package-with-a-long-name-${String(i).padStart(4, '0')}_1.0_amd64.deb`, mode: 0o644, size: 100 + n + changed, mtime: T + changed, sha256: sha(`${n} ${changed}`) })
    }
    if (d === 7) out.push({ type: 'f', path: `${dir}/zz-new-in-${g}.deb`, mode: 0o644, size: g + 1, mtime: T, sha256: sha(`new ${g}`) })
  }
  out.push({ type: 'f', path: 'pool/d07/tab\there', mode: 0o644, size: 3 + g, mtime: T, sha256: sha(`tab ${g}`) })
  out.push({ type: 'f', path: `zzz-last-${g % 2}`, mode: 0o644, size: 5, mtime: T, sha256: sha(`last ${g}`) })
  const key = (p: string) => Buffer.from(p, 'utf8')
  return out.sort((a, b) => Buffer.compare(key(a.path), key(b.path)))
}

/** Each entry line of a list by its path as written (escaped). */
function linesByPath(list: Buffer): Map<string, string> {
  const t = indexLines(list) as LineTable
  const out = new Map<string, string>()
  for (let i = 0; i < t.count; i++) {
    const line = list.toString('utf8', t.starts[i], t.starts[i + 1] - 1)
    out.set(line.split('\t')[5], line)
  }
  return out
}

const escape = (p: string) => p.replace(/\\/g, '\\\\').replace(/\t/g, '\\t')

test('a chain of deltas applied as a stream gives the list byte for byte, and DEST\'s lines at the changed paths', () => {
  const lists = [0, 1, 2, 3].map(g => serializeManifest(generation(g), 65536))
  assert.ok(lists[0].length > 3 << 20, `the list spans several chunks (${lists[0].length} bytes)`)
  const deltas = [1, 2, 3].map(g => parseDelta(makeDelta(g, lists[g - 1], lists[g])))
  // One after the other, as gendsync checks each delta.
  for (let g = 1; g <= 3; g++) assert.ok(applyDelta(lists[g - 1], deltas[g - 1]).equals(lists[g]))

  const file = join(tempDir('dsync-delta-apply-'), 'data.dsync')
  writeFileSync(file, lists[0])
  for (const [from, to] of [[0, 1], [0, 3], [1, 3], [2, 3]]) {
    const src = from === 0 ? fileReader(file) : bufferReader(lists[from])
    const got = applyDeltas(src, deltas.slice(from, to))
    src.close()
    assert.ok(got.manifest.equals(lists[to]), `generation ${from} -> ${to}: the list gendsync wrote`)
    assert.equal(got.sha256, createHash('sha256').update(lists[to]).digest('hex'))
    assert.equal(got.fromSha256, createHash('sha256').update(lists[from]).digest('hex'))
    assert.equal(got.previousEntries, Number(/\nentries (\d+)\n/.exec(lists[from].toString('latin1', 0, 200))![1]))
    const named = new Set(deltas.slice(from, to).flatMap(d => d.lines.map(l => (l.startsWith('-\t') ? l.split('\t')[1] : l.split('\t')[5]).replace(/\\t/g, '\t').replace(/\\\\/g, '\\'))))
    assert.deepEqual([...got.before.keys()].sort(), [...named].sort())
    const old = linesByPath(lists[from])
    for (const [path, line] of got.before) assert.equal(line, old.get(escape(path)), `DEST's line at ${path}`)
    // Into a file (the client's update: the new list never in memory), with its line offsets.
    const out = join(file, '..', `next-${from}-${to}`)
    const onDisk = applyDeltasToFile(() => (from === 0 ? fileReader(file) : bufferReader(lists[from])), deltas.slice(from, to), out)
    assert.ok(readFileSync(out).equals(lists[to]), `generation ${from} -> ${to} into a file: the list gendsync wrote`)
    assert.equal(onDisk.sha256, got.sha256)
    assert.equal(onDisk.fromSha256, got.fromSha256)
    assert.equal(onDisk.size, lists[to].length)
    assert.deepEqual(onDisk.before, got.before)
    const t = indexLines(lists[to]) as LineTable
    assert.equal(onDisk.count, t.count)
    assert.deepEqual([...onDisk.starts], [...t.starts.subarray(0, t.count + 1)], 'each line\'s offset in the file')
    assert.equal(onDisk.header, lists[to].toString('latin1', 0, t.bodyAt + 2))
    assert.deepEqual(onDisk.hardlinks, [...Array(t.count).keys()].filter(i => lists[to][t.starts[i]] === 0x68))
    const lines = fileLines(onDisk)
    for (const i of [0, 1, 4000, t.count - 1]) assert.ok(lines.line(i).equals(lists[to].subarray(t.starts[i], t.starts[i + 1])), `line ${i} read back`)
    const key = Buffer.from('pool/d07/tab\there')
    assert.ok(keyAt(lines, lowerBoundIn(lines, key)).equals(key), 'an escaped path found by its bytes')
    lines.close()
  }
  assert.equal(fileSha256(file), createHash('sha256').update(lists[0]).digest('hex'))
  assert.equal(fileSha256(join(file, '..', 'missing')), undefined)
})

test('a delta whose lines are out of order, or DEST\'s list cut short, is refused', () => {
  const lists = [0, 1].map(g => serializeManifest(generation(g), 65536))
  const delta = parseDelta(makeDelta(1, lists[0], lists[1]))
  const swapped = { ...delta, lines: [delta.lines[1], delta.lines[0], ...delta.lines.slice(2)] }
  assert.throws(() => applyDeltas(bufferReader(lists[0]), [swapped]), /lines not sorted by path/)
  assert.throws(() => applyDeltas(bufferReader(lists[0].subarray(0, lists[0].length - 200)), [delta]), /not a complete data\.dsync/)
  // Into a file: refused the same way, and no half-written list left behind.
  const out = join(tempDir('dsync-delta-apply-'), 'next')
  assert.throws(() => applyDeltasToFile(() => bufferReader(lists[0]), [swapped], out), /lines not sorted by path/)
  assert.throws(() => applyDeltasToFile(() => bufferReader(lists[0].subarray(0, lists[0].length - 200)), [delta], out), /not a complete data\.dsync/)
  let reads = 0
  // DEST's list changed between the counting pass and the writing one (five entries fewer).
  const shorter = serializeManifest(generation(0).slice(0, -5), 65536)
  assert.throws(() => applyDeltasToFile(() => bufferReader(reads++ === 0 ? lists[0] : shorter), [delta], out), /changed while it was read/)
  assert.equal(existsSync(out), false, 'no list left behind')
})
