import assert from 'node:assert/strict'
import { test } from 'node:test'
import { WarmMemory } from '../src/manifest/warm-memory.js'

/**
 * A hinted gendsync writes the new data.dsync and shard torrents into memory touched on libuv's
 * threads beforehand (src/manifest/warm-memory.ts), while those threads may still be filling the
 * rest of it with random bytes. Nothing may be handed out before its fill is done (the fill would
 * write over the caller's bytes), and no byte twice.
 */
test('warm memory hands out only touched bytes, each once, and the fills never write over them', async () => {
  const memory = new WarmMemory(40 << 20)
  assert.equal(memory.take(1), undefined, 'handed out before any fill was done')
  // Taken as soon as it is warm (more than one chunk of the fills): later chunks may still be filling.
  let first: Buffer | undefined
  while (!(first = memory.take(6 << 20))) await new Promise(resolve => setImmediate(resolve))
  first.fill(0xab)
  const second = memory.take(1 << 20) ?? await memory.settled.then(() => memory.take(1 << 20))
  assert.ok(second)
  second.fill(0xcd)
  await memory.settled
  assert.ok(first.byteOffset + first.length <= second.byteOffset || second.byteOffset + second.length <= first.byteOffset, 'two takes overlap')
  assert.ok(first.every(b => b === 0xab), 'the first bytes taken were written over')
  assert.ok(second.every(b => b === 0xcd), 'the second bytes taken were written over')
  const rest = memory.take((40 << 20) - (7 << 20))
  assert.ok(rest, 'the rest is warm once every fill is done')
  assert.equal(memory.take(1), undefined, 'more than there is')
})

test('warm memory: once ready(n) settles, n bytes can be taken', async () => {
  const memory = new WarmMemory(24 << 20)
  await memory.ready(9 << 20)
  assert.ok(memory.take(9 << 20), 'ready settled before the bytes were warm')
  // More than is left: settles (take could not give it), and take says no.
  await memory.ready(16 << 20)
  assert.equal(memory.take(16 << 20), undefined)
  await memory.settled
  assert.ok(memory.take(15 << 20), 'settled before every fill')
})
