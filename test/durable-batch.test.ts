import assert from 'node:assert/strict'
import { constants, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
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

test('a staged file is synced by its own write (O_SYNC), needing no turn of the event loop', { skip: !existsSync('/proc/self/fdinfo') }, async () => {
  // gendsync's main thread builds its next output synchronously while the batch writes: an
  // fsync chained after the write waited for the end of the run (docs/ARCHITECTURE.md,
  // "gendsync, session 15"). The temporary file's open flags must carry O_SYNC.
  const dir = tempDir('dsync-batch-')
  const batch = new DurableBatch()
  batch.add(join(dir, 'a'), Buffer.alloc(1 << 20, 0x61))
  const tmp = readdirSync(dir).find(n => n.startsWith('.a.tmp-'))
  assert.ok(tmp, 'the temporary file exists once added')
  const fd = readdirSync('/proc/self/fd').find(n => {
    try {
      return readlinkSync(join('/proc/self/fd', n)) === join(dir, tmp)
    } catch {
      return false
    }
  })
  assert.ok(fd, 'the temporary file is open')
  const flags = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(readFileSync(join('/proc/self/fdinfo', fd), 'utf8'))![1], 8)
  assert.equal(flags & constants.O_SYNC, constants.O_SYNC, `flags 0${flags.toString(8)} lack O_SYNC`)
  await batch.commit()
  assert.equal(readFileSync(join(dir, 'a')).length, 1 << 20)
})
