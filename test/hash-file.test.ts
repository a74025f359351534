import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { hashFileSync } from '../src/manifest/hash-file.js'
import { referenceDigests } from '../testbed/digests.js'
import { tempDir } from '../testbed/tree.js'


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
    const want = referenceDigests(data, P)
    for (const wantTail of [false, true]) {
      const got = hashFileSync(file, { size, mtimeMs: st.mtimeMs, ino: st.ino }, P, wantTail)
      assert.ok(got.sha256.equals(want.sha256), `sha256 of ${size} bytes`)
      assert.ok(got.pieces.equals(want.pieces), `pieces of ${size} bytes`)
      assert.equal(got.tail?.toString('hex'), wantTail ? want.tail?.toString('hex') : undefined, `tail of ${size} bytes`)
    }
  }
})
