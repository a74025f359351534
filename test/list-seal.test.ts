import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { pieceHashes } from '../src/manifest/hash-file.js'
import { serializeManifest } from '../src/manifest/format.js'
import type { ManifestEntry } from '../src/manifest/entry.js'
import { ListSeal } from '../src/publish/list-seal.js'

// A full gendsync seals data.dsync in stretches while the workers hash (src/publish/list-seal.ts):
// whatever stretches it is given, its END line, SHA-256 and piece hashes must be those of the
// finished list taken in one go. A wrong piece hash would show only on a sharded pull, a wrong
// END only when the list is parsed: here each is compared with the format's own writer.

const P = 16384

function entries(count: number): ManifestEntry[] {
  const out: ManifestEntry[] = []
  for (let i = 0; i < count; i++) {
    const path = `pool/main/p${Math.floor(i / 100)}/pkg${i}_1.${i % 7}_amd64.deb`
    out.push({ type: 'f', path, mode: 0o644, size: 100 + i * 13, mtime: 1_700_000_000 + i, sha256: createHash('sha256').update(path).digest() })
  }
  return out
}

/** Increasing bounds over [0, end], some repeated, some past the body (the END line is never sealed early). */
function bounds(end: number, seed: number): number[] {
  const out: number[] = []
  let at = 0
  let x = seed
  while (at < end) {
    x = (x * 1103515245 + 12345) & 0x7fffffff
    at = Math.min(end, at + (x % (3 * P)))
    out.push(at)
    if (x % 5 === 0) out.push(at)
  }
  return out
}

test('ListSeal: the END line, SHA-256 and piece hashes of a list sealed in stretches are the finished list\'s', () => {
  for (const [count, seed] of [[3000, 1], [3000, 7], [40, 3], [1, 5]]) {
    const finished = serializeManifest(entries(count), P)
    for (const order of [bounds(finished.length, seed), [finished.length], []]) {
      const list = Buffer.from(finished)
      list.fill(0x30, list.length - 65, list.length - 1) // the END line's digits not yet written
      const seal = new ListSeal(list, P)
      for (const to of order) seal.final(to)
      const { sha256, listPieces } = seal.finish()
      assert.ok(list.equals(finished), `END line (${count} entries, ${order.length} stretches)`)
      assert.equal(sha256, createHash('sha256').update(finished).digest('hex'))
      assert.equal(listPieces.length, finished.length)
      assert.ok(listPieces.pieces.equals(pieceHashes(finished, P, false).pieces), `piece hashes (${count} entries, ${order.length} stretches)`)
    }
  }
})
