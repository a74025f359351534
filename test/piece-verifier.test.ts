import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { PieceVerifier, WHOLE_OFF_THREAD_BYTES, type Verdict } from '../src/swarm/piece-verifier.js'

// The verifier thread's whole-file check (PieceVerifier.checkWhole), on its real worker: the
// downloader accepts a one-piece file on its verdict without the piece's SHA-1, so a verdict
// must say "matches" for the right bytes and only for them. End to end, a bad peer is in
// test/sync-hostile-wire ("one-piece files with wrong bytes ...").

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

function bytes(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) b[i] = (i * 2654435761 + seed * 40503) >>> 24
  return b
}

/** Queues `data` against `hex`; resolves with the verdict and a copy of the bytes it was given. */
function check(v: PieceVerifier, data: Buffer, hex: string): Promise<{ ok: boolean | undefined; seen: Buffer }> {
  return new Promise(resolve => {
    const verdict: Verdict = (ok, kept) => resolve({ ok, seen: Buffer.from(kept) })
    v.checkWhole(data, hex, verdict)
  })
}

test('whole files on the verifier thread: each good file matches with its own bytes, a wrong one does not, the caller may reuse its buffer at once', async () => {
  const v = new PieceVerifier()
  try {
    // Two batches' worth: small files packed together, one bigger than a batch buffer (its own).
    const files = [
      ...Array.from({ length: 40 }, (_, i) => bytes(WHOLE_OFF_THREAD_BYTES + 997 * i, i)),
      bytes(3 << 20, 99),
    ]
    const scratch = Buffer.alloc(3 << 20)
    const pending = files.map((f, i) => {
      // Handed in through one reused buffer, as the downloader hands socket views: overwritten right after.
      const view = scratch.subarray(0, f.length)
      f.copy(view)
      const hex = i === 7 ? sha256(Buffer.concat([f.subarray(1), Buffer.from('x')])) : sha256(f)
      const result = check(v, view, hex)
      view.fill(0xee)
      return result
    })
    const results = await Promise.all(pending)
    results.forEach(({ ok, seen }, i) => {
      assert.equal(ok, i !== 7, `file ${i} (${files[i].length} B): verdict ${ok}`)
      assert.ok(seen.equals(files[i]), `file ${i}: the verdict was handed its own bytes`)
    })
  } finally {
    v.close()
  }
})

test('whole-file checks still waiting when the verifier closes are reported lost, not matched', async () => {
  const v = new PieceVerifier()
  const f = bytes(WHOLE_OFF_THREAD_BYTES * 2, 5)
  const result = check(v, f, sha256(f))
  v.close()
  assert.equal((await result).ok, undefined)
})
