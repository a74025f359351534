import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { test } from 'node:test'
import { connectPacket, startTrackerProcess } from '../testbed/tracker-wire.js'
import { RateLimiter } from '../tracker/rate-limit.js'

/**
 * A flood of UDP connects from many sources (issue 10: 50k packets/s from random 127/8
 * addresses were all answered, and the per-address limiter's table grew without bound).
 */
const HOST = '127.0.20.1'

test('a connect flood from many source addresses is answered only up to the global budget', async () => {
  const tr = await startTrackerProcess(HOST, ['--rate-limit', '20', '--connect-rate', '200'])
  try {
    const sockets: Socket[] = []
    let replies = 0
    // 250 source addresses, 8 connects each: every one is within its own per-address burst.
    for (let i = 0; i < 250; i++) {
      const s = createSocket('udp4')
      s.on('message', () => replies++)
      await new Promise<void>(resolve => s.bind(0, `127.0.21.${i + 1}`, () => resolve()))
      sockets.push(s)
    }
    const started = Date.now()
    for (const s of sockets) for (let k = 0; k < 8; k++) s.send(connectPacket(), tr.port, HOST)
    await new Promise(r => setTimeout(r, 1500))
    const seconds = (Date.now() - started) / 1000
    for (const s of sockets) s.close()
    assert.ok(replies > 0, 'no connect was answered at all')
    // The budget: one second's worth at once, then 200 a second.
    assert.ok(replies <= 200 + 200 * seconds + 20, `${replies} of 2000 connects answered in ${seconds.toFixed(1)} s with --connect-rate 200`)
  } finally {
    await tr.stop()
  }
})

test("the rate limiter's table stays bounded under new source addresses", () => {
  const limiter = new RateLimiter(20, 100, 1000)
  for (let i = 0; i < 50_000; i++) limiter.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
  assert.ok(limiter.size <= 1000, `${limiter.size} addresses remembered (cap 1000)`)
  // A busy address stays remembered (least recently seen goes first), so it stays limited.
  const l2 = new RateLimiter(1, 5, 100)
  let granted = 0
  for (let i = 0; i < 1000; i++) {
    if (l2.take('192.0.2.1')) granted++
    l2.take(`198.51.100.${i % 250}`)
  }
  assert.ok(granted <= 6, `the busy address got ${granted} requests through`)
})
