import { resolve } from 'node:path'
import type { Command } from 'commander'
import { SETTINGS } from '../../src/config/defaults.js'
import { makeFirewall } from '../../src/config/dtp-config.js'
import { DEFAULT_INDEX_FILES } from '../../src/config/repo-config.js'
import { DsyncError, ExitCode } from '../../src/errors.js'
import { t } from '../../src/i18n/index.js'
import { parseAddress, type PeerAddress } from '../../src/swarm/address.js'
import type { PullResult } from '../../src/sync/pull.js'
import { ProgressBar } from '../../src/ui/progress.js'
import { formatBytes } from '../../src/ui/units.js'
import { globals, intFlag, printJson, say, warn } from '../context.js'
import { exitAtOnceWhenDone } from '../exit-at-once.js'

export interface TransferFlags {
  peer: string[]
  tracker: string[]
  /** Unset: the repo's connections= (sync), else the default. */
  connections?: number
  delete: boolean
  dryRun?: boolean
  force?: boolean
  bind?: string
  key?: string
  dhtBootstrap: string[]
  dht?: boolean
  rescan?: boolean
}

/** Options shared by pull, sync and diff. */
export function transferOptions(cmd: Command): Command {
  return cmd
    .option('--peer <host:port>', 'a host to pull from directly (repeatable)', collect, [])
    .option('--tracker <url>', 'a tracker to ask for hosts (repeatable)', collect, [])
    .option('--connections <n>', `most peer connections at once (default: the repo's connections=, else ${SETTINGS.connections.default})`, intFlag('--connections', SETTINGS.connections))
    .option('--no-delete', 'keep files upstream has removed')
    .option('--force', 'allow deleting more than the delete limit')
    .option('--bind <addr>', 'local address to connect from')
    .option('--dht', 'also look hosts up in the BitTorrent DHT (BEP 5), where hosts with dht=true announce')
    .option('--rescan', 'walk all of DEST: an update is otherwise planned from the deltas\' paths alone and a no-change check looks at nothing (finds and repairs local damage)')
    .option('--dht-bootstrap <host:port>', 'a DHT node to start from for magnet:?xs=urn:btpk: sources (repeatable; default: the public ones)', collect, [])
    .option('--key <hex>', "the publisher's key (`dsync key` on the publisher): refuse generations it did not sign or older than the last applied", publicKeyArg)
}

function publicKeyArg(v: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new DsyncError(ExitCode.usage, 'generation.badKeyArg', { value: v })
  return v.toLowerCase()
}

export function registerPull(program: Command): void {
  transferOptions(program
    .command('pull')
    .description('bring DEST to the generation SOURCE names, pulling from every host at once')
    .argument('<source>', 'magnet link, .torrent path or URL, or dtp://HOST[:PORT]/REPO')
    .argument('<dest>', 'the mirror folder to update (created if missing)'))
    .option('--dry-run', 'print what would change; transfer no file data')
    .option('--seed', 'after the sync, keep serving DEST as a DTP host until interrupted')
    .option('--seed-listen <addr>', 'address to serve on with --seed (default: all)')
    .option('--seed-port <n>', `port to serve on with --seed (default: ${SETTINGS.port.default})`, intFlag('--seed-port', SETTINGS.port))
    .option('--seed-allow <addr>', 'with --seed: an address or CIDR range allowed to connect (repeatable; default: everyone)', seedAllow, [])
    .action(async (source: string, dest: string, opts: TransferFlags & { seed?: boolean; seedListen?: string; seedPort?: number; seedAllow: string[] }, cmd: Command) => {
      const g = globals(cmd)
      const result = await runPull([source], resolve(dest), opts, DEFAULT_INDEX_FILES, SETTINGS.deleteLimit.default, g.json)
      report(result, g.json)
      // The pull closed everything it opened (swarm, workers, lock): the process may end now.
      if (!opts.seed || opts.dryRun) exitAtOnceWhenDone()
      if (opts.seed && !opts.dryRun) {
        const { seedDest } = await import('../../src/host/serve-folder.js')
        await seedDest({
          dest: result.dest, repo: result.repo, listen: opts.seedListen, port: opts.seedPort, allow: opts.seedAllow, json: g.json,
          onReady: where => warn(`seeding ${result.dest} as a DTP host on ${where} (Ctrl-C to stop)`),
        })
      }
    })
}

export function registerDiff(program: Command): void {
  transferOptions(program
    .command('diff')
    .description('print what a pull would change (added, changed, removed, bytes) without transferring file data')
    .argument('<source>', 'magnet link, .torrent path or URL, or dtp://HOST[:PORT]/REPO')
    .argument('<dest>', 'the mirror folder to compare'))
    .action(async (source: string, dest: string, opts: TransferFlags, cmd: Command) => {
      const g = globals(cmd)
      const result = await runPull([source], resolve(dest), { ...opts, dryRun: true }, DEFAULT_INDEX_FILES, SETTINGS.deleteLimit.default, g.json)
      report(result, g.json)
    })
}

export async function runPull(sources: string[], dest: string, opts: TransferFlags, indexFiles: string[], deleteLimit: number, json: boolean): Promise<PullResult> {
  const bar = new ProgressBar(process.stderr, !json && process.stderr.isTTY === true)
  const peers = peersOf(opts.peer)
  // Loaded on use: the network stack (bittorrent-tracker and friends) costs start-up time
  // that gendsync, verify and the rest should not pay.
  const { pull } = await import('../../src/sync/pull.js')
  const { traceMark } = await import('../../src/swarm/trace.js')
  // Diagnostic (DSYNC_SWARM_TRACE): what the process spends between the pull's return and its exit.
  if (process.env.DSYNC_SWARM_TRACE) process.once('exit', () => traceMark('exit'))
  try {
    return await pull({
      sources, dest, peers, trackers: opts.tracker, connections: opts.connections, noDelete: !opts.delete,
      dryRun: opts.dryRun, force: opts.force, deleteLimit, indexFiles, localAddress: opts.bind, key: opts.key,
      dhtBootstrap: opts.dhtBootstrap.length > 0 ? opts.dhtBootstrap : undefined, dht: opts.dht, rescan: opts.rescan,
      onWarning: m => { bar.done(); warn(m) },
      onMotd: (peer, text) => { if (!json) { bar.done(); warn(t('sync.motd', { peer, motd: text.trimEnd() })) } },
      onApplyStep: faultInjection(process.env.DSYNC_FAULT),
      onProgress: progressPrinter(json, bar),
    })
  } finally {
    traceMark('pull-returned')
    bar.done()
  }
}

type Progress = Parameters<NonNullable<import('../../src/sync/pull.js').PullOptions['onProgress']>>[0]

/**
 * Progress for pull and sync: a bar on a terminal, or JSON events at most 4 times a second
 * (one per piece cost 7% of a pull's CPU) and whenever a phase completes.
 */
export function progressPrinter(json: boolean, bar: ProgressBar, prefix = '', extra: Record<string, unknown> = {}): (p: Progress) => void {
  let last = 0
  return p => {
    if (!json) {
      bar.update({ label: `${prefix}${p.phase}`, filesDone: p.filesDone, filesTotal: p.filesTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, note: `${p.peers} peers` })
      return
    }
    const now = Date.now()
    if (now - last < 250 && p.bytesDone !== p.bytesTotal) return
    last = now
    printJson({ event: 'progress', ...extra, ...p })
  }
}

export function report(r: PullResult, json: boolean): void {
  if (json) return printJson({ event: 'summary', ...r })
  if (r.dryRun && r.plan) {
    for (const p of r.plan.added) say(`+ ${p}`)
    for (const p of r.plan.changed) say(`~ ${p}`)
    for (const p of r.plan.removed) say(`- ${p}`)
    say(`${r.plan.added.length} added, ${r.plan.changed.length} changed, ${r.plan.removed.length} removed; ${formatBytes(r.bytesToFetch)} to fetch`)
    return
  }
  if (r.upToDate && r.bytesReceived === 0) {
    say(t('sync.upToDate', { dest: r.dest, infohash: r.infoHash, seconds: r.seconds.toFixed(1) }))
    return
  }
  say(t('sync.done', {
    dest: r.dest, added: r.added, changed: r.changed, removed: r.removed, bytes: formatBytes(r.bytesReceived),
    hosts: Object.keys(r.bytesPerHost).length, seconds: r.seconds.toFixed(1),
  }))
  for (const [host, bytes] of Object.entries(r.bytesPerHost)) say(`  ${host}\t${formatBytes(bytes)}`)
  if (r.seq !== undefined) {
    say(t(r.route === 'deltas' ? 'generation.summaryDeltas' : 'generation.summaryFull', {
      seq: r.seq, deltas: r.deltas ?? 0, metadata: formatBytes(r.metadataBytes), key: t(r.verified ? 'generation.keyPinned' : 'generation.keyUnpinned'),
    }))
  }
}

/**
 * Crash testing: DSYNC_FAULT=apply:STEP kills the process with SIGKILL right after that
 * apply step (mkdirs, files, index, deletes, commit: DEST's data.dsync written), and
 * DSYNC_FAULT=apply:STEP:N right after the N-th item of files, index or deletes, so tests
 * can check what a crash leaves behind.
 */
function faultInjection(want: string | undefined): ((step: string, done?: number) => void) | undefined {
  // Read once: the apply calls this after every file, and process.env is a look-up in the
  // environment at each read (96 ms of a 200,000-file bootstrap's apply in a loaded profile).
  if (!want) return undefined
  return (step, done) => {
    if (want === `apply:${step}${done === undefined ? '' : `:${done}`}`) process.kill(process.pid, 'SIGKILL')
  }
}

export function peersOf(list: string[]): PeerAddress[] {
  return list.map(p => {
    const a = parseAddress(p)
    if (!a) throw new DsyncError(ExitCode.usage, 'sync.badSource', { source: p })
    return a
  })
}

/** Checked when parsed, so a typo fails before the sync, not after it. */
function seedAllow(value: string, previous: string[]): string[] {
  try {
    makeFirewall([value])
  } catch (err) {
    throw new DsyncError(ExitCode.usage, 'seed.badAllow', { reason: (err as Error).message })
  }
  return [...previous, value]
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

