import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { makeFirewall } from '../config/dtp-config.js'
import { makeMainConfig } from '../config/main-config.js'
import { DEFAULT_INDEX_FILES, makeRepoConfig } from '../config/repo-config.js'
import type { HostConfig } from '../host/host-config.js'
import { generateRepo, type GenerateResult } from '../publish/generate.js'
import { ProgressBar } from '../ui/progress.js'
import { formatBytes } from '../ui/units.js'
import { put, writeSampleRepo } from './sample-repo.js'

export interface DemoOptions {
  log: (line: string) => void
  keep?: boolean
}

const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4']

/**
 * The embedded demo, on loopback, in a temporary folder, no root needed: a sample APT-style
 * repository is published (gendsync), the bundled tracker and three DTP hosts start, and a
 * new mirror bootstraps from the magnet link alone, pulling from all three hosts at once.
 * Then a few files change upstream, the hosts reload, and the mirror syncs again, moving
 * only the changed bytes. Everything runs in this process, so Ctrl-C leaves nothing behind.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'dsync-demo-'))
  const stops: (() => Promise<void>)[] = []
  const cleanup = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    if (!opts.keep) rmSync(base, { recursive: true, force: true })
  }
  const onSigint = () => { void cleanup().then(() => process.exit(130)) }
  process.once('SIGINT', onSigint)
  try {
    const { startTracker } = await import('../../tracker/server.js')
    const { pull } = await import('../sync/pull.js')

    const webroot = join(base, 'mirrors')
    const save = join(webroot, 'demo')
    opts.log(`demo folder: ${base}`)
    const packages = writeSampleRepo(save)
    opts.log(`upstream repository: ${packages.length} packages, APT layout (pool/, dists/) under ${save}`)

    const tracker = await startTracker({ port: 0, listen: '127.0.0.1', http: true, udp: true, ws: false, interval: 60, rateLimit: 0, policy: { private: false } })
    stops.push(() => tracker.close())
    const trackerUrl = `http://127.0.0.1:${tracker.port}/announce`
    opts.log(`tracker: ${trackerUrl} (also udp://127.0.0.1:${tracker.port})`)

    const first = await publish(save, [trackerUrl], opts)
    const { hosts, port } = await startHosts(webroot, save, trackerUrl, stops)
    opts.log(`DTP hosts: ${HOSTS.map(h => `${h}:${port}`).join(', ')}`)
    await waitFor(() => tracker.store.scrape(first.infoHash).complete >= HOSTS.length, 10_000)

    const mirror = join(base, 'new-mirror')
    opts.log(`\nbootstrapping a new mirror from the magnet link alone -> ${mirror}`)
    await sync(first.magnet, mirror, opts, pull)

    for (const rel of packages.slice(0, 3)) put(save, rel, `rebuilt ${rel}\n`.repeat(500), new Date('2026-02-01T00:00:00Z'))
    put(save, 'dists/stable/Release', 'Origin: dsync demo\nSuite: stable\nDate: next\n', new Date('2026-02-01T00:00:00Z'))
    opts.log('\nupstream changed 3 packages and Release; regenerating and reloading the hosts')
    const second = await publish(save, [trackerUrl], opts)
    for (const host of hosts) host.reload()
    await waitFor(() => tracker.store.scrape(second.infoHash).complete >= HOSTS.length, 10_000)
    await sync(second.magnet, mirror, opts, pull)
    opts.log('\ndone; stopping the hosts and the tracker')
  } finally {
    process.off('SIGINT', onSigint)
    await cleanup()
  }
}

/** Three DTP hosts serve the same folder in place, each on its own loopback address, configured in memory. */
async function startHosts(webroot: string, save: string, trackerUrl: string, stops: (() => Promise<void>)[]): Promise<{ hosts: { reload(): unknown }[]; port: number }> {
  const { DtpHost } = await import('../host/host.js')
  const { HostLog } = await import('../host/log.js')
  const port = 40000 + Math.floor(Math.random() * 9000)
  const quiet = new Writable({ write: (_c, _e, cb) => cb() })
  const hosts: InstanceType<typeof DtpHost>[] = []
  for (const [i, address] of HOSTS.entries()) {
    const config = (): HostConfig => ({
      main: makeMainConfig({ webroot, listen: [address], port, trackers: [trackerUrl] }),
      repos: [makeRepoConfig({ name: 'demo', save, publish: true })],
      listed: ['demo'],
      firewall: makeFirewall([]),
      motd: `Welcome to demo host ${i + 1} (${address}).\n`,
      warnings: [],
    })
    const host = new DtpHost({ config, log: new HostLog(false, quiet) })
    await host.start()
    stops.push(() => host.stop())
    hosts.push(host)
  }
  return { hosts, port }
}

async function publish(save: string, trackers: string[], opts: DemoOptions): Promise<GenerateResult> {
  const bar = new ProgressBar()
  const r = await generateRepo({
    name: 'demo', save, trackers,
    onProgress: p => { if (p.phase === 'hash') bar.update({ label: 'gendsync', ...p }) },
  })
  bar.done()
  opts.log(`gendsync: ${r.entries} entries, ${r.files} files, ${formatBytes(r.bytes)}; re-read ${r.hashedFiles} files in ${r.seconds.toFixed(2)}s`)
  opts.log(`magnet: ${r.magnet}`)
  return r
}

async function sync(magnet: string, dest: string, opts: DemoOptions, pull: typeof import('../sync/pull.js').pull): Promise<void> {
  const bar = new ProgressBar()
  const r = await pull({
    sources: [magnet], dest, indexFiles: DEFAULT_INDEX_FILES,
    onMotd: (peer, text) => { bar.done(); opts.log(`  motd from ${peer}: ${text.trim()}`) },
    onWarning: m => { bar.done(); opts.log(`  ${m}`) },
    onProgress: p => bar.update({ label: p.phase, filesDone: p.filesDone, filesTotal: p.filesTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, note: `${p.peers} hosts` }),
  })
  bar.done()
  opts.log(`sync: ${r.added} added, ${r.changed} changed, ${r.removed} removed, ${r.filesCopiedLocally} copied locally; ${formatBytes(r.bytesReceived)} received in ${r.seconds.toFixed(2)}s`)
  for (const [host, bytes] of Object.entries(r.bytesPerHost).sort()) opts.log(`  from ${host}: ${formatBytes(bytes)}`)
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise(r => setTimeout(r, 50))
}
