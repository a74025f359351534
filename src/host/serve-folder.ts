import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { DEFAULT_PORT } from '../config/main-config.js'

export interface SeedOptions {
  dest: string
  repo: string
  listen?: string
  port?: number
  json: boolean
  onReady?: (address: string) => void
}

/**
 * `pull --seed`: after the sync, DEST is served like a DTP host (peer wire and HTTP on one
 * port) until SIGINT/SIGTERM. The pull left DEST's data.dsync, torrent and magnet link in
 * DEST/.dsync/, so nothing is hashed again. The host is the real one (src/host), given a
 * throwaway home that publishes DEST alone; the repository folder itself is only read.
 */
export async function seedDest(opts: SeedOptions): Promise<void> {
  const { DtpHost } = await import('../host/host.js')
  const { HostLog } = await import('../host/log.js')
  const home = mkdtempSync(join(tmpdir(), 'dsync-seed-'))
  try {
    mkdirSync(join(home, 'repos'))
    mkdirSync(join(home, 'dtp'))
    const listen = opts.listen ? `listen=${opts.listen}\n` : ''
    writeFileSync(join(home, 'xync.conf'), `webroot=${dirname(opts.dest)}\nport=${opts.port ?? DEFAULT_PORT}\n${listen}`)
    writeFileSync(join(home, 'repos', `${opts.repo}.conf`), `repo=${opts.repo}\nsave=${opts.dest}\ndsync=true\n`)
    writeFileSync(join(home, 'dtp', 'list.conf'), `/${basename(opts.dest)}\n`)
    writeFileSync(join(home, 'dtp', 'firewall.conf'), '')
    writeFileSync(join(home, 'dtp', 'motd.conf'), '경로=\n')
    const host = new DtpHost({ home, log: new HostLog(opts.json, process.stderr) })
    await host.start()
    opts.onReady?.(`${opts.listen ?? '*'}:${opts.port ?? DEFAULT_PORT}`)
    await new Promise<void>(resolve => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await host.stop()
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
}
