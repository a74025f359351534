import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { prefetchStamped, sameFile } from '../src/util/prefetch.js'
import { tempDir } from '../testbed/tree.js'

/**
 * A hinted gendsync reads the previous data.dsync, tables and shard files ahead on libuv's
 * threads (src/util/prefetch.ts), into views of one buffer, so that malloc can map it in huge
 * pages (shard files are each below a huge page's 2 MiB). Each view must be its file's bytes
 * and only those (views laid out wrong would give a file its neighbour's bytes), or nothing for
 * a file that cannot be read whole.
 */
test('prefetched files are their bytes, in views of one buffer; a file that cannot be read is left out', async () => {
  const dir = tempDir('dsync-prefetch-')
  const files = {
    big: join(dir, 'big'),
    small: join(dir, 'small'),
    empty: join(dir, 'empty'),
    missing: join(dir, 'missing'),
    folder: join(dir, 'folder'),
    other: join(dir, 'other'),
  }
  writeFileSync(files.big, randomBytes((3 << 20) + 4097))
  writeFileSync(files.small, 'data.dsync 1\n')
  writeFileSync(files.empty, '')
  mkdirSync(files.folder)
  writeFileSync(files.other, randomBytes(1 << 20))

  const got = await prefetchStamped(Object.values(files))
  const read = [files.big, files.small, files.empty, files.other]
  assert.deepEqual([...got.keys()].sort(), [...read].sort(), 'what was read whole, and only that')
  for (const path of read) {
    const r = got.get(path)!
    assert.ok(r.buf.equals(readFileSync(path)), `${path}: not the file's bytes`)
    // Typed-array views of a file's bytes need its start aligned (the tables: table-cache.ts).
    assert.equal(r.buf.byteOffset % 8, 0, `${path}: starts at byte ${r.buf.byteOffset} of the buffer, not 8-aligned`)
    assert.equal(r.stamp.size, statSync(path).size)
    assert.ok(sameFile(path, r.stamp))
  }
  const buffers = new Set(read.filter(p => got.get(p)!.buf.length > 0).map(p => got.get(p)!.buf.buffer))
  assert.equal(buffers.size, 1, 'the files were read into separate allocations')
})
