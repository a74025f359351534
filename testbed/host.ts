import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { runCli } from './cli.js'
import { makeHome, writePool } from './tree.js'

/**
 * Host tests use 127.0.3.x (all of 127/8 is loopback on Linux) so that they never collide
 * with other test files' hosts on 127.0.0.x running at the same time on the same port.
 */
export const HOST_PORT = 47921

export interface TestHost {
  base: string
  home: string
  webroot: string
  address: string
  /** The DTP port it listens on: HOST_PORT unless prepareHost was given another. */
  port: number
  cli(...args: string[]): ReturnType<typeof runCli>
  log(): string
  genInfo: Record<string, { infoHash: string; seconds: number }>
}

/**
 * A home with published repos on `address`, gendsync'ed; not started. Its temporary folder
 * is removed after the test file, once the service is stopped (a service whose home vanished
 * could not be found by stop-service any more).
 */
export async function prepareHost(address: string, repos: Parameters<typeof makeHome>[1], extraConf = '', port = HOST_PORT): Promise<TestHost> {
  const base = mkdtempSync(join(tmpdir(), 'dsync-host-'))
  const h = makeHome(base, repos, `listen=${address}\nport=${port}\n${extraConf}`)
  const cli = (...args: string[]) => runCli(['--home', h.home, ...args])
  after(async () => {
    await cli('stop-service')
    rmSync(base, { recursive: true, force: true })
  })
  const genInfo: TestHost['genInfo'] = {}
  if (Object.keys(repos).length > 0) {
    const g = await cli('--json', 'gendsync')
    assert.equal(g.code, 0, g.stderr)
    for (const line of g.stdout.trim().split('\n')) {
      const r = JSON.parse(line) as { repo: string; infoHash: string; seconds: number }
      genInfo[r.repo] = { infoHash: r.infoHash, seconds: r.seconds }
    }
  }
  return { ...h, base, address, port, cli, genInfo, log: () => readFileSync(join(h.home, 'log', 'dtp.log'), 'utf8') }
}

/** Starts the service in the background (as `dsync service` does) and stops it after the file. */
export async function startHost(host: TestHost, listed: string[]): Promise<void> {
  // dtp/ is created by `service`; list.conf is written first so the first start serves.
  const r0 = await host.cli('service')
  assert.equal(r0.code, 0, r0.stderr)
  writeFileSync(join(host.home, 'dtp', 'list.conf'), listed.map(l => `/${l}\n`).join(''))
  const r = await host.cli('reload')
  assert.equal(r.code, 0, r.stderr)
}

export interface ShardedGeneration { infoHash: string; shards: { infoHash: string }[] }

/**
 * A started host serving `repo`: 10,000 pool files with 450-byte paths, so its torrent needs two
 * shards or more (src/torrent/shards.ts). Returns the repo's folder and gendsync's JSON line.
 */
export async function startShardedHost(address: string, repo: string, port = HOST_PORT): Promise<{ host: TestHost; save: string; gen: ShardedGeneration }> {
  const host = await prepareHost(address, {}, '', port)
  const save = join(host.webroot, repo)
  writePool(save, 10_000, 200)
  writeFileSync(join(host.home, 'repos', `${repo}.conf`), `repo=${repo}\nsave=${save}\ndsync=true\n`)
  const g = await host.cli('--json', 'gendsync')
  assert.equal(g.code, 0, g.stderr)
  const gen = JSON.parse(g.stdout) as ShardedGeneration
  assert.ok(gen.shards && gen.shards.length >= 2, 'the repository is sharded')
  await startHost(host, [repo])
  return { host, save, gen }
}
