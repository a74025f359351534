import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { ContentIds } from '../src/sync/content-ids.js'

const digest = (i: number) => createHash('sha256').update(String(i)).digest()

test('content numbers: one per distinct digest, found again by its bytes, through growth and colliding slots', () => {
  const ids = new ContentIds(4)
  const n = 50_000
  for (let i = 0; i < n; i++) assert.equal(ids.add(digest(i)), i)
  // Digests that share their first 4 bytes (the slot hash) and differ after: each its own number.
  const twins = Array.from({ length: 64 }, (_, k) => {
    const d = Buffer.alloc(32, 7)
    d[31] = k
    return d
  })
  for (const [k, d] of twins.entries()) assert.equal(ids.add(d), n + k)
  assert.equal(ids.size, n + twins.length)
  // Equal bytes in another Buffer are the same content; an unknown digest has none.
  for (let i = 0; i < n; i += 997) assert.equal(ids.get(Buffer.from(digest(i))), i)
  for (const [k, d] of twins.entries()) assert.equal(ids.add(Buffer.from(d)), n + k)
  assert.equal(ids.get(digest(n + 1)), -1)
  assert.equal(ids.size, n + twins.length)
})

test('content numbers keep their own copy of each digest: a caller may reuse or drop the Buffer it passed', () => {
  // The client's entries make a new view of their digest at each read (format.ts, SlabEntry):
  // the table must not depend on the bytes it was handed staying where they were.
  const ids = new ContentIds(4)
  const scratch = Buffer.alloc(32)
  const n = 5_000
  for (let i = 0; i < n; i++) {
    digest(i).copy(scratch)
    assert.equal(ids.add(scratch), i)
    scratch.fill(0)
  }
  for (let i = 0; i < n; i++) assert.equal(ids.get(digest(i)), i, `digest ${i} found by its bytes`)
  assert.equal(ids.get(Buffer.alloc(32)), -1)
  assert.equal(ids.size, n)
})
