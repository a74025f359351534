import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli } from '../testbed/cli.js'
import { prepareHost, startHost } from '../testbed/host.js'
import { tempDir } from '../testbed/tree.js'
import { startTrackerProcess } from '../testbed/tracker-wire.js'

const TRACKER = '127.0.3.171'
const HOST = '127.0.3.172'
const CLIENT = '127.0.3.173'

/**
 * Issue 10 item 8: tracker announces leave from `--bind`. The private tracker talks only to the
 * host's and the client's bound addresses, and the magnet names no peer: a pull whose announces
 * left from the default address (127.0.0.1) would be refused and find no host.
 */
test('pull --bind announces to a private tracker from the bound address (HTTP and UDP)', { timeout: 180_000 }, async t => {
  const dir = tempDir()
  const allowFile = join(dir, 'allow.txt')
  writeFileSync(allowFile, '# filled once gendsync names the infohash\n')
  const tr = await startTrackerProcess(TRACKER, ['--private', '--allow-file', allowFile,
    '--allow-address', `${HOST},${CLIENT}`, '--rate-limit', '0', '--interval', '300'])
  try {
    const http = `http://${TRACKER}:${tr.port}/announce`
    const udp = `udp://${TRACKER}:${tr.port}`
    const data = randomBytes(200_000)
    const host = await prepareHost(HOST, { rocky: { 'a.bin': data, 'sub/b.txt': 'hello\n' } }, `tracker=${http},${udp}\n`)
    const infoHash = host.genInfo.rocky.infoHash
    writeFileSync(allowFile, `${infoHash}\n`)
    tr.child.kill('SIGHUP')
    await tr.waitFor(e => e.event === 'reload' && e.torrents === 1)
    await startHost(host, ['rocky'])
    for (const [name, url] of [['http', http], ['udp', udp]]) {
      await t.test(`${name} tracker`, async () => {
        const dest = join(dir, `dest-${name}`)
        const magnet = `magnet:?xt=urn:btih:${infoHash}&tr=${encodeURIComponent(url)}`
        const r = await runCli(['pull', magnet, dest, '--bind', CLIENT])
        assert.equal(r.code, 0, `pull failed: ${r.stderr}`)
        assert.ok(readFileSync(join(dest, 'a.bin')).equals(data))
        assert.equal(readFileSync(join(dest, 'sub', 'b.txt'), 'utf8'), 'hello\n')
      })
    }
  } finally {
    await tr.stop()
  }
})
