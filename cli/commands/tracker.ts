import { resolve } from 'node:path'
import type { Command } from 'commander'
import { RANGES, SETTINGS } from '../../src/config/defaults.js'
import { t } from '../../src/i18n/index.js'
import type { TrackerEvent, TrackerOptions } from '../../tracker/options.js'
import { globals, intFlag, printJson, type GlobalOptions } from '../context.js'

interface TrackerFlags {
  port?: number
  listen?: string
  http: boolean
  udp: boolean
  ws: boolean
  interval?: number
  minInterval?: number
  peerTimeout?: number
  rateLimit?: number
  connectRate?: number
  trustProxy?: string
  private?: boolean
  allowFile?: string
  keysFile?: string
  fromHome?: boolean
  allowAddress?: string
}

export function registerTracker(program: Command): void {
  program
    .command('tracker')
    .description('run the bundled BitTorrent tracker (http, udp and ws on one port) in the foreground')
    .option('--port <n>', `TCP and UDP port (default: ${SETTINGS.trackerPort.default})`, intFlag('--port', SETTINGS.trackerPort))
    .option('--listen <addr>', 'address to listen on (default: :: and IPv4 through it, else 0.0.0.0)')
    .option('--no-http', 'no HTTP announce/scrape/stats')
    .option('--no-udp', 'no UDP (BEP 15) tracker')
    .option('--no-ws', 'no WebSocket (WebTorrent) tracker')
    .option('--interval <s>', `announce interval asked of clients, seconds (default: ${SETTINGS.trackerInterval.default})`, intFlag('--interval', SETTINGS.trackerInterval))
    .option('--min-interval <s>', 'least announce interval, seconds (default: half the interval)', intFlag('--min-interval', RANGES.trackerMinInterval))
    .option('--peer-timeout <s>', 'drop peers silent this long, seconds (default: twice the interval)', intFlag('--peer-timeout', RANGES.trackerPeerTimeout))
    .option('--connect-rate <n>', 'UDP connect replies per second for the whole tracker, whatever the source; 0 = no budget (default: 10000)', intFlag('--connect-rate', { min: 0, max: 10_000_000 }))
    .option('--rate-limit <n>', `requests per second per address, bursts of 5x; 0 = no limit (default: ${SETTINGS.trackerRateLimit.default})`, intFlag('--rate-limit', SETTINGS.trackerRateLimit))
    .option('--trust-proxy <addrs>', 'reverse proxies (addresses/CIDR, comma-separated) whose X-Forwarded-For is believed')
    .option('--private', 'track only allowlisted info hashes (--allow-file and/or --from-home)')
    .option('--allow-file <file>', 'allowlist: one infohash per line; reloaded on SIGHUP')
    .option('--from-home', 'allowlist every published repository of the dsync home (--home)')
    .option('--keys-file <file>', 'passkeys, one per line; clients announce to /PASSKEY/announce; reloaded on SIGHUP')
    .option('--allow-address <addrs>', 'only these addresses/CIDR ranges (comma-separated) may use the tracker')
    .action((flags: TrackerFlags, cmd: Command) => runTracker(flags, globals(cmd)))
}

/** Runs the tracker in the foreground until SIGINT/SIGTERM; SIGHUP rereads the allowlist and keys. */
async function runTracker(flags: TrackerFlags, g: GlobalOptions): Promise<void> {
  const log = (event: TrackerEvent): void => {
    if (g.json) return printJson({ time: new Date().toISOString(), event: event.type, ...withoutType(event) })
    const line = describe(event)
    if (event.type === 'warning' || event.type === 'reloadFailed') process.stderr.write(line + '\n')
    else process.stdout.write(line + '\n')
  }
  const { startTracker } = await import('../../tracker/server.js')
  const tracker = await startTracker({ ...trackerOptions(flags, g), onEvent: log })
  await new Promise<void>(done => {
    const onHup = (): void => tracker.reload()
    const onStop = (): void => {
      process.off('SIGHUP', onHup)
      process.off('SIGINT', onStop)
      process.off('SIGTERM', onStop)
      void tracker.close().then(() => {
        if (g.json) printJson({ time: new Date().toISOString(), event: 'stopped' })
        else process.stdout.write(t('tracker.stopped') + '\n')
        done()
      })
    }
    process.on('SIGHUP', onHup)
    process.on('SIGINT', onStop)
    process.on('SIGTERM', onStop)
  })
}

/** The flags as tracker options; an unset flag takes its default from src/config/defaults.ts. */
function trackerOptions(flags: TrackerFlags, g: GlobalOptions): TrackerOptions {
  return {
    port: flags.port ?? SETTINGS.trackerPort.default,
    listen: flags.listen,
    http: flags.http,
    udp: flags.udp,
    ws: flags.ws,
    interval: flags.interval ?? SETTINGS.trackerInterval.default,
    minInterval: flags.minInterval,
    peerTimeout: flags.peerTimeout,
    rateLimit: flags.rateLimit ?? SETTINGS.trackerRateLimit.default,
    connectRate: flags.connectRate,
    trustProxy: list(flags.trustProxy),
    policy: {
      private: flags.private === true || flags.allowFile !== undefined || flags.fromHome === true,
      allowFile: flags.allowFile && resolve(flags.allowFile),
      keysFile: flags.keysFile && resolve(flags.keysFile),
      fromHome: flags.fromHome,
      homeFlag: g.home,
      allowAddresses: list(flags.allowAddress),
    },
  }
}

function describe(e: TrackerEvent): string {
  switch (e.type) {
    case 'listening': {
      const address = e.address.includes(':') ? `[${e.address}]` : e.address
      const mode = e.private ? t('tracker.mode.private', { torrents: e.torrents, keys: e.keys })
        : e.keys > 0 ? t('tracker.mode.private', { torrents: '*', keys: e.keys }) : t('tracker.mode.public')
      return t('tracker.listening', { address, port: e.port, transports: e.transports.join(', '), mode })
    }
    case 'reload': return t('tracker.reloaded', { torrents: e.torrents, keys: e.keys, dropped: e.dropped })
    case 'reloadFailed': return t('tracker.reloadFailed', { reason: e.reason })
    case 'refused': return t('tracker.refused', { transport: e.transport, address: e.address, reason: e.reason })
    case 'warning': return e.message
  }
}

function withoutType(e: TrackerEvent): Record<string, unknown> {
  const { type: _type, ...rest } = e
  return rest
}

function list(text: string | undefined): string[] {
  return text ? text.split(',').map(s => s.trim()).filter(Boolean) : []
}
