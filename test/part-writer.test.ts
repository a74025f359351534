import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { PartWriter, STAGE_DIRS, stagedPath } from '../src/sync/part-writer.js'
import { ITEM_LAST } from '../src/sync/stage-items.js'
import { tempDir } from '../testbed/tree.js'

/**
 * PartWriter hashes a file's SHA-256 as its pieces are written. A piece that lands ahead of the
 * hashed prefix is not held in memory: it is read back from the `.part` once the gap before it
 * fills (session 25, m25). These files' pieces come in an order that leaves gaps, on real files,
 * and must end staged under their SHA-256 (the hash read back from the right places), or be
 * refused when one piece is wrong. Seen failing with the read-back pointed at the wrong offset
 * (every file "mismatch").
 */
const PIECE = 64 << 10

function staging(): string {
  const dir = join(tempDir('part-writer-'), 'staging')
  for (let n = 0; n < STAGE_DIRS; n++) mkdirSync(join(dir, String(n)), { recursive: true })
  return dir
}

/** A file of `pieces` pieces (the last one shorter) and its SHA-256. */
function file(pieces: number): { data: Buffer; hex: string } {
  const data = randomBytes(pieces * PIECE - 1000)
  return { data, hex: createHash('sha256').update(data).digest('hex') }
}

/** Writes piece `p` of `f`, ITEM_LAST when `last`. */
function writePiece(w: PartWriter, f: { data: Buffer; hex: string }, p: number, last: boolean, bytes?: Buffer) {
  const at = p * PIECE
  const piece = bytes ?? f.data.subarray(at, Math.min(at + PIECE, f.data.length))
  return w.write(f.hex, at, piece, f.data.length, last ? ITEM_LAST : 0)
}

test('pieces written ahead of the hashed prefix are hashed from the file once the gap fills; the file is staged', () => {
  const dir = staging()
  const w = new PartWriter(dir)
  const f = file(8)
  const order = [3, 1, 6, 0, 5, 2, 7, 4]
  const outcomes = order.map((p, i) => writePiece(w, f, p, i === order.length - 1))
  assert.deepEqual(outcomes, [undefined, undefined, undefined, undefined, undefined, undefined, undefined, 'verified'])
  assert.ok(readFileSync(stagedPath(dir, f.hex)).equals(f.data))
  assert.ok(!existsSync(stagedPath(dir, f.hex, '.part')))
  w.closeAll()
})

test('two files interleaved, each out of order, reuse one read-back buffer; both are staged', () => {
  const dir = staging()
  const w = new PartWriter(dir)
  const a = file(5)
  const b = file(6)
  const steps: [typeof a, number][] = [[a, 4], [b, 5], [b, 2], [a, 1], [b, 0], [a, 0], [b, 1], [a, 3], [b, 4], [a, 2], [b, 3]]
  const last = new Map([[a, 9], [b, 10]])
  const results = steps.map(([f, p], i) => writePiece(w, f, p, last.get(f) === i))
  assert.equal(results[9], 'verified')
  assert.equal(results[10], 'verified')
  assert.ok(readFileSync(stagedPath(dir, a.hex)).equals(a.data))
  assert.ok(readFileSync(stagedPath(dir, b.hex)).equals(b.data))
  w.closeAll()
})

test('a wrong piece written ahead of the prefix makes its file a mismatch, and its .part is removed', () => {
  const dir = staging()
  const w = new PartWriter(dir)
  const f = file(4)
  const wrong = Buffer.from(f.data.subarray(2 * PIECE, 3 * PIECE))
  wrong[100] ^= 0xff
  assert.equal(writePiece(w, f, 2, false, wrong), undefined)
  assert.equal(writePiece(w, f, 3, false), undefined)
  assert.equal(writePiece(w, f, 0, false), undefined)
  assert.equal(writePiece(w, f, 1, true), 'mismatch')
  assert.ok(!existsSync(stagedPath(dir, f.hex)))
  assert.ok(!existsSync(stagedPath(dir, f.hex, '.part')))
  w.closeAll()
})

test('a piece written again behind the hashed prefix sends the file to a whole read at the end; still staged', () => {
  const dir = staging()
  const w = new PartWriter(dir)
  const f = file(4)
  for (const p of [0, 1, 0, 3]) assert.equal(writePiece(w, f, p, false), undefined)
  assert.equal(writePiece(w, f, 2, true), 'verified')
  assert.ok(readFileSync(stagedPath(dir, f.hex)).equals(f.data))
  w.closeAll()
})
