import { resolve } from 'node:path'
import type { Command } from 'commander'
import { DsyncError, ExitCode } from '../../src/errors.js'
import { t } from '../../src/i18n/index.js'
import type { TrackerEvent } from '../../tracker/server.js'
import { globals, printJson } from '../context.js'

interface TrackerFlags {
  port: string
  listen?: string
  http: boolean
  udp: boolean
  ws: boolean
  interval: string
  minInterval?: string
  peerTimeout?: string
  rateLimit: string
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
    .option('--port <n>', 'TCP and UDP port', '6969')
    .option('--listen <addr>', 'address to listen on (default: :: and IPv4 through it, else 0.0.0.0)')
    .option('--no-http', 'no HTTP announce/scrape/stats')
    .option('--no-udp', 'no UDP (BEP 15) tracker')
    .option('--no-ws', 'no WebSocket (WebTorrent) tracker')
    .option('--interval <s>', 'announce interval asked of clients, seconds', '1800')
    .option('--min-interval <s>', 'least announce interval, seconds (default: half the interval)')
    .option('--peer-timeout <s>', 'drop peers silent this long, seconds (default: twice the interval)')
    .option('--rate-limit <n>', 'requests per second per address, bursts of 5x; 0 = no limit', '20')
    .option('--trust-proxy <addrs>', 'reverse proxies (addresses/CIDR, comma-separated) whose X-Forwarded-For is believed')
    .option('--private', 'track only allowlisted info hashes (--allow-file and/or --from-home)')
    .option('--allow-file <file>', 'allowlist: one infohash per line; reloaded on SIGHUP')
    .option('--from-home', 'allowlist every published repository of the dsync home (--home)')
    .option('--keys-file <file>', 'passkeys, one per line; clients announce to /PASSKEY/announce; reloaded on SIGHUP')
    .option('--allow-address <addrs>', 'only these addresses/CIDR ranges (comma-separated) may use the tracker')
    .action(async (flags: TrackerFlags, cmd: Command) => {
      const g = globals(cmd)
      const log = (event: TrackerEvent): void => {
        if (g.json) return printJson({ time: new Date().toISOString(), event: event.type, ...withoutType(event) })
        const line = describe(event)
        if (event.type === 'warning' || event.type === 'reloadFailed') process.stderr.write(line + '\n')
        else process.stdout.write(line + '\n')
      }
      const privateMode = flags.private === true || flags.allowFile !== undefined || flags.fromHome === true
      const { startTracker } = await import('../../tracker/server.js')
      const tracker = await startTracker({
        port: intOption('--port', flags.port, 0, 65535),
        listen: flags.listen,
        http: flags.http,
        udp: flags.udp,
        ws: flags.ws,
        interval: intOption('--interval', flags.interval, 1, 86400),
        minInterval: flags.minInterval === undefined ? undefined : intOption('--min-interval', flags.minInterval, 1, 86400),
        peerTimeout: flags.peerTimeout === undefined ? undefined : intOption('--peer-timeout', flags.peerTimeout, 1, 7 * 86400),
        rateLimit: intOption('--rate-limit', flags.rateLimit, 0, 1_000_000),
        trustProxy: list(flags.trustProxy),
        policy: {
          private: privateMode,
          allowFile: flags.allowFile && resolve(flags.allowFile),
          keysFile: flags.keysFile && resolve(flags.keysFile),
          fromHome: flags.fromHome,
          homeFlag: g.home,
          allowAddresses: list(flags.allowAddress),
        },
        onEvent: log,
      })
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
    })
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

function intOption(option: string, text: string, min: number, max: number): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new DsyncError(ExitCode.usage, 'tracker.badOption', { option, reason: `expected an integer from ${min} to ${max}, got "${text}"` })
  }
  return n
}

function list(text: string | undefined): string[] {
  return text ? text.split(',').map(s => s.trim()).filter(Boolean) : []
}
