import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { deltaReproduces, makeDelta, parseDelta } from '../src/generation/delta.js'
import type { ManifestEntry } from '../src/manifest/entry.js'
import { serializeManifest } from '../src/manifest/format.js'

/**
 * gendsync checks every delta it writes against the data.dsync it made (src/generation/publish.ts):
 * applied to the previous list, the delta must give the new one, byte for byte up to its END
 * line. The check compares the applied pieces where they land in the new list; it must
 * accept the right list and refuse any other: one byte changed, in the header's counts or in
 * a line; one line too many at the end; one line missing.
 */
const T = 1700000000
const sha = (s: string) => createHash('sha256').update(s).digest()

function list(g: number): Buffer {
  const out: ManifestEntry[] = [{ type: 'd', path: 'pool', mode: 0o755, size: 0, mtime: T }]
  for (let i = 0; i < 3000; i++) {
    if (i % 301 === g) continue
    const changed = (i + g) % 97 === 0 ? g : 0
    out.push({ type: 'f', path: `pool/pkg-${String(i).padStart(5, '0')}_1.0_all.deb`, mode: 0o644, size: 100 + i + changed, mtime: T + changed, sha256: sha(`${i} ${changed}`) })
  }
  if (g > 0) out.push({ type: 'f', path: `pool/zz-new-${g}.deb`, mode: 0o644, size: g, mtime: T, sha256: sha(`new ${g}`) })
  return serializeManifest(out, 65536)
}

test('a delta reproduces the list it was made for and no other', () => {
  const [before, after] = [list(0), list(1)]
  const delta = parseDelta(makeDelta(1, before, after))
  assert.ok(delta.lines.length > 10, 'the lists differ in many lines')
  assert.equal(deltaReproduces(before, delta, after), true)

  const end = after.lastIndexOf('\nEND\t') + 1
  const flipped = (at: number) => {
    const copy = Buffer.from(after)
    copy[at] ^= 0x01
    return copy
  }
  // A byte of the header's counts, one in the first line, one in the middle, the last before END.
  for (const at of [after.indexOf('\nentries ') + 9, after.indexOf('\n\n') + 3, Math.floor(end / 2), end - 2]) {
    assert.equal(deltaReproduces(before, delta, flipped(at)), false, `byte ${at} of ${end} changed`)
  }
  const lineEnd = after.indexOf('\n', after.indexOf('\n\n') + 2) + 1
  const extra = Buffer.concat([after.subarray(0, end), Buffer.from(after.subarray(after.indexOf('\n\n') + 2, lineEnd)), after.subarray(end)])
  assert.equal(deltaReproduces(before, delta, extra), false, 'one line more before END')
  const missing = Buffer.concat([after.subarray(0, after.indexOf('\n\n') + 2), after.subarray(lineEnd)])
  assert.equal(deltaReproduces(before, delta, missing), false, 'the first line missing')
  // And the delta of another pair of lists does not reproduce this one.
  assert.equal(deltaReproduces(before, parseDelta(makeDelta(1, before, list(2))), after), false)
})
