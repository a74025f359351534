import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { hashFileSync } from '../src/manifest/hash-file.js'
import { tempDir } from '../testbed/tree.js'

/** The digests by their definition: SHA-256 of the file, SHA-1 of each piece zero-padded, the last one unpadded. */
function reference(data: Buffer, pieceLength: number) {
  const pieces: Buffer[] = []
  let tail: Buffer | undefined
  for (let at = 0; at < data.length; at += pieceLength) {
    const slice = data.subarray(at, at + pieceLength)
    pieces.push(createHash('sha1').update(slice).update(Buffer.alloc(pieceLength - slice.length)).digest())
    if (slice.length < pieceLength) tail = createHash('sha1').update(slice).digest()
  }
  return { sha256: createHash('sha256').update(data).digest(), pieces: Buffer.concat(pieces), tail }
}

test('file digests equal their definition at every size around piece and read-buffer boundaries, large files first', () => {
  const dir = tempDir()
  const P = 16384
  // Large before small: the read buffer is reused, so a short file must not see a longer one's bytes.
  const sizes = [(1 << 20) + 7, (1 << 20) + 1, 1 << 20, (1 << 20) - 1, 3 * P + 5, 2 * P, P + 1, P, P - 1, 1000, 1]
  for (const size of sizes) {
    const file = join(dir, `f${size}`)
    const data = randomBytes(size)
    writeFileSync(file, data)
    const st = statSync(file)
    const want = reference(data, P)
    for (const wantTail of [false, true]) {
      const got = hashFileSync(file, { size, mtimeMs: st.mtimeMs, ino: st.ino }, P, wantTail)
      assert.ok(got.sha256.equals(want.sha256), `sha256 of ${size} bytes`)
      assert.ok(got.pieces.equals(want.pieces), `pieces of ${size} bytes`)
      assert.equal(got.tail?.toString('hex'), wantTail ? want.tail?.toString('hex') : undefined, `tail of ${size} bytes`)
    }
  }
})
