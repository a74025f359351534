import { basename, dirname } from 'node:path'
import { makeFirewall } from '../config/dtp-config.js'
import { DEFAULT_PORT, makeMainConfig } from '../config/main-config.js'
import { makeRepoConfig } from '../config/repo-config.js'
import type { HostConfig } from './host-config.js'

export interface SeedOptions {
  dest: string
  repo: string
  listen?: string
  port?: number
  /** Addresses and CIDR ranges allowed to connect (firewall.conf's allow=); empty: everyone. */
  allow?: string[]
  json: boolean
  onReady?: (address: string) => void
}

/**
 * `pull --seed`: after the sync, DEST is served like a DTP host (peer wire and HTTP on one
 * port) until SIGINT/SIGTERM. The pull left DEST's data.dsync, torrent and magnet link in
 * DEST/.dsync/, so nothing is hashed again. The host is the real one, given an in-memory
 * configuration that publishes DEST alone; the repository folder itself is only read.
 */
export async function seedDest(opts: SeedOptions): Promise<void> {
  const { DtpHost } = await import('./host.js')
  const { HostLog } = await import('./log.js')
  const port = opts.port ?? DEFAULT_PORT
  const config = (): HostConfig => ({
    main: makeMainConfig({ webroot: dirname(opts.dest), port, listen: opts.listen ? [opts.listen] : [] }),
    repos: [makeRepoConfig({ name: opts.repo, save: opts.dest, publish: true })],
    listed: [basename(opts.dest)],
    firewall: makeFirewall(opts.allow ?? []),
    motd: '',
    warnings: [],
  })
  const host = new DtpHost({ config, log: new HostLog(opts.json, process.stderr) })
  await host.start()
  opts.onReady?.(`${opts.listen ?? '*'}:${port}`)
  await new Promise<void>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await host.stop()
}
