import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import type { ManifestEntry } from '../src/manifest/entry.js'
import { SlabTable, sameEntry } from '../src/manifest/format.js'
import { FetchList } from '../src/sync/fetch-list.js'

const file = (path: string, content: string): ManifestEntry =>
  ({ type: 'f', path, mode: 0o644, size: content.length, mtime: 1_700_000_000, sha256: createHash('sha256').update(content).digest() })

test('the contents to fetch: each digest once with its first entry, read as a Map by hex, and the staged mode marked for that entry only', () => {
  const list = new FetchList(2)
  const entries = Array.from({ length: 5000 }, (_, i) => file(`pool/f${i}.deb`, `content ${i % 3000}`))
  // 3000 distinct contents; the second path of a content is not listed again.
  const added = entries.map(e => list.add(e))
  assert.equal(list.size, 3000)
  assert.deepEqual(added.map((a, i) => a === i < 3000), entries.map(() => true))
  const hex = (e: ManifestEntry) => e.sha256!.toString('hex')
  // Read by hex as the routes and staging read it: the first entry of each content.
  assert.equal(list.get(hex(entries[4321])), entries[1321])
  assert.ok(list.has(hex(entries[17])))
  assert.equal(list.get(createHash('sha256').update('elsewhere').digest('hex')), undefined)
  assert.equal(list.entryOf(Buffer.from(entries[2999].sha256!)), entries[2999])
  // Iterated in the order listed, with the hex names a Map would hold.
  assert.deepEqual([...list.keys()], entries.slice(0, 3000).map(hex))
  assert.deepEqual(new Map(list), new Map(entries.slice(0, 3000).map(e => [hex(e), e])))
  // The stage worker set the first entry's mode on the staged file: another path of the same
  // content, or an entry equal in every field, still needs its own chmod.
  assert.equal(list.hasMetaOf(entries[5]), false)
  list.markMeta(entries[5])
  assert.equal(list.hasMetaOf(entries[5]), true)
  assert.equal(list.hasMetaOf(entries[3005]), false)
  assert.equal(list.hasMetaOf({ ...entries[5] }), false)
  assert.equal(list.hasMetaOf(entries[6]), false)
})

test('entries parsed into slabs (SlabEntry) are found by every byte of their digest, compared in the slab', () => {
  const table = new SlabTable(16)
  const entries = Array.from({ length: 600 }, (_, i) =>
    table.add('f', undefined, `pool/f${i}.deb`, 0o644, 10, 1_700_000_000, createHash('sha256').update(`content ${i}`).digest('hex')))
  const list = new FetchList(2)
  for (const e of entries) assert.equal(list.add(e), true)
  assert.equal(list.size, 600)
  for (const i of [0, 299, 599]) {
    // A row's entry is made at each read: the same row, not the same object.
    assert.ok(sameEntry(list.entryOf(Buffer.from(entries[i].sha256)), entries[i]))
    assert.ok(sameEntry(list.get(entries[i].sha256.toString('hex')), entries[i]))
    // A digest that differs in one byte only (the last, or one in the middle) is not listed.
    for (const at of [31, 17]) {
      const near = Buffer.from(entries[i].sha256)
      near[at] ^= 1
      assert.equal(list.entryOf(near), undefined)
      assert.equal(list.idOfHex(near.toString('hex')), -1)
    }
  }
})

test('a content is fetched for its first entry (isFirstAt) whether the list keeps rows or, once a plain entry came, objects', () => {
  const table = new SlabTable(16)
  const rows = Array.from({ length: 20 }, (_, i) =>
    table.add('f', undefined, `pool/f${i}.deb`, 0o644, 10, 1_700_000_000, createHash('sha256').update(`row ${i}`).digest('hex')))
  const list = new FetchList(2)
  for (const e of rows) list.add(e)
  // A shard's file is a fresh view of the same row (shards.ts reads them from an EntryList).
  const again = (i: number) => table.entry(rows[i].row)
  for (const i of [0, 7, 19]) {
    assert.equal(list.isFirstAt(list.idOf(rows[i].sha256), again(i)), true)
    assert.equal(list.isFirstAt(list.idOf(rows[i].sha256), again((i + 1) % 20)), false)
  }
  // An entry that is no row of the table turns the list into objects: the rows' views still match.
  const plain = file('other/x', 'plain')
  list.add(plain)
  for (const i of [0, 7, 19]) assert.equal(list.isFirstAt(list.idOf(rows[i].sha256), again(i)), true, `row ${i} after the list turned into objects`)
  assert.equal(list.isFirstAt(list.idOf(plain.sha256!), plain), true)
  assert.equal(list.isFirstAt(list.idOf(plain.sha256!), { ...plain }), false)
})
