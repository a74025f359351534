import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { DsyncError } from '../src/errors.js'
import { DurableBatch } from '../src/util/durable-batch.js'
import { tempDir } from '../testbed/tree.js'

// gendsync writes its outputs through one batch (src/publish/generate.ts): readers must see
// each file old or new, never a part, and nothing of a batch that failed to be written.

test('files appear only at commit, whole, with no temporary files left', async () => {
  const dir = tempDir('dsync-batch-')
  writeFileSync(join(dir, 'a'), 'old a')
  const big = Buffer.alloc(8 << 20, 0x61)
  const batch = new DurableBatch()
  batch.add(join(dir, 'a'), 'new a')
  batch.add(join(dir, 'b'), big)
  batch.add(join(dir, 'c'), 'c')
  let after: string[] | undefined
  batch.then(() => {
    after = readdirSync(dir).sort()
  })
  // Added, written on libuv's threads, not in place yet.
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'old a')
  assert.equal(existsSync(join(dir, 'b')), false)
  assert.equal(after, undefined)
  await batch.commit()
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'new a')
  assert.ok(readFileSync(join(dir, 'b')).equals(big))
  assert.equal(readFileSync(join(dir, 'c'), 'utf8'), 'c')
  // then() ran after every rename, and no temporary file was left.
  assert.deepEqual(after, ['a', 'b', 'c'])
})

test('a rename that fails stops the ones after it and removes every temporary file', async () => {
  const dir = tempDir('dsync-batch-')
  writeFileSync(join(dir, 'a'), 'old a')
  writeFileSync(join(dir, 'c'), 'old c')
  // A non-empty folder where file b should go: its rename fails.
  mkdirSync(join(dir, 'b', 'inside'), { recursive: true })
  const batch = new DurableBatch()
  let ran = false
  batch.add(join(dir, 'a'), 'new a')
  batch.add(join(dir, 'b'), 'new b')
  batch.add(join(dir, 'c'), 'new c')
  batch.then(() => {
    ran = true
  })
  await assert.rejects(batch.commit(), (err: unknown) => err instanceof DsyncError && err.message.includes(join(dir, 'b')))
  // In order: a before b is in place; c, after the failure, is not.
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'new a')
  assert.equal(readFileSync(join(dir, 'c'), 'utf8'), 'old c')
  assert.equal(ran, false)
  assert.deepEqual(readdirSync(dir).sort(), ['a', 'b', 'c'])
})

test('an add that cannot start names the file; abort leaves every target as it was', async () => {
  const dir = tempDir('dsync-batch-')
  writeFileSync(join(dir, 'a'), 'old a')
  const batch = new DurableBatch()
  batch.add(join(dir, 'a'), 'new a')
  batch.add(join(dir, 'b'), 'new b')
  const missing = join(dir, 'no-such-folder', 'c')
  assert.throws(() => batch.add(missing, 'c'), (err: unknown) => err instanceof DsyncError && err.message.includes(missing))
  await batch.abort()
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'old a')
  assert.deepEqual(readdirSync(dir).sort(), ['a'])
  assert.throws(() => batch.add(join(dir, 'd'), 'd'))
})
