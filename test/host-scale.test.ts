import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadGeneration } from '../src/host/generation.js'
import { CLI as CLI_PATH } from '../testbed/cli.js'
import { HOST_PORT, prepareHost } from '../testbed/host.js'
import { writeManyFiles } from '../testbed/host-tree.js'
import { WireLeecher } from '../testbed/leecher.js'

/**
 * The 200,000-file case lives in `npm run bench -- host` (creating the tree and hashing it
 * takes minutes on 2 cores); here 20,000 files prove the same function: a (re)started host
 * seeds without reading the tree, and serves under a low open-file limit.
 */
const FILES = 20_000
const ADDR = '127.0.3.100'

test(`a host restarted on a ${FILES}-file repo seeds at once, without re-hashing`, { timeout: 240_000 }, async t => {
  const t0 = Date.now()
  const mark = (what: string) => t.diagnostic(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const host = await prepareHost(ADDR, {})
  const save = join(host.webroot, 'big')
  writeManyFiles(save, FILES)
  writeFileSync(join(host.home, 'repos', 'big.conf'), `repo=big\nsave=${save}\ndsync=true\n`)
  mark('tree written')
  const g = await host.cli('--json', 'gendsync')
  assert.equal(g.code, 0, g.stderr)
  t.diagnostic(`gendsync of ${FILES} files: ${(JSON.parse(g.stdout) as { seconds: number }).seconds.toFixed(1)} s`)
  const gen = loadGeneration('big', save)
  const seg = gen.segments.list().filter(s => s.source === 'file').at(-1)!
  const lastPiece = seg.offset / gen.pieceLength
  const expected = readFileSync(join(save, seg.path))

  const first = await host.cli('service')
  assert.equal(first.code, 0, first.stderr)
  writeFileSync(join(host.home, 'dtp', 'list.conf'), '/big\n')
  assert.equal((await host.cli('reload')).code, 0)
  assert.equal((await host.cli('stop-service')).code, 0)

  for (const round of ['start', 'restart']) {
    const started = Date.now()
    // The service inherits this shell's limit: 20,000 files must seed through 256 descriptors.
    const svc = await runShell(`ulimit -n 256 && exec "${process.execPath}" "${CLI_PATH}" --home "${host.home}" service`)
    assert.equal(svc.code, 0, svc.stderr)
    const user = new WireLeecher(ADDR, HOST_PORT, '127.0.3.101', gen.infoHash)
    await user.waitUnchoked(30_000)
    const block = await user.request(lastPiece, 0, seg.length)
    const seconds = (Date.now() - started) / 1000
    assert.ok(block.equals(expected), 'the last file of the repo came back intact')
    // Many blocks at once across many files: the bounded fd cache must not hit EMFILE.
    const spread = gen.segments.list().filter(s => s.source === 'file').filter((_, i) => i % 37 === 0).slice(0, 400)
    mark(`${round} first block`)
    const blocks = await Promise.all(spread.map(s => user.request(s.offset / gen.pieceLength, 0, s.length)))
    // Each block is the bytes of its file on disk, not merely a block of the right count.
    spread.forEach((seg, i) => assert.ok(blocks[i].equals(readFileSync(join(save, seg.path))), `${seg.path} came back intact`))
    user.close()
    mark(`${round} spread blocks`)
    const log = host.log()
    assert.match(log, /repo big loaded: .* \(0 files hashed\)/)
    const opened = [...log.matchAll(/first block served to .* \((\d+) files opened so far\)/g)].at(-1)
    assert.ok(opened && Number(opened[1]) <= 2, `the host read files nobody asked for: ${opened?.[0]}`)
    const status = JSON.parse((await host.cli('--json', 'status')).stdout) as { openFiles: number }
    assert.ok(status.openFiles <= 128, `open files ${status.openFiles}`)
    t.diagnostic(`${round}: service -> first block of the last file: ${seconds.toFixed(2)} s`)
    assert.equal((await host.cli('stop-service')).code, 0)
    mark(`${round} stopped`)
  }
})

function runShell(script: string): Promise<{ code: number; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LANG: 'C.UTF-8' } })
    let stderr = ''
    child.stderr.on('data', d => (stderr += d))
    child.on('close', code => resolve({ code: code ?? -1, stderr }))
  })
}
