import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { DsyncError, ExitCode } from '../errors.js'
import { parseBool, parseIntIn, parseKeyValue, parseList, parseNonEmpty, readConfigFile, type Origin } from './keyvalue.js'

export const DEFAULT_PORT = 47921

/** `~/dxync/xync.conf`: settings shared by every repository of this host. */
export interface MainConfig {
  file: string
  webroot: string
  /** Announce URLs written into every torrent; never create-torrent's public defaults. */
  trackers: string[]
  port: number
  listen: string[]
  dht: boolean
  origins: Map<string, Origin>
  warnings: string[]
}

const schema = {
  webroot: { parse: parseNonEmpty },
  tracker: { parse: parseTrackers },
  port: { parse: parseIntIn(1, 65535) },
  listen: { parse: parseAddresses },
  dht: { parse: parseBool },
}

export function loadMainConfig(file: string): MainConfig {
  const parsed = parseKeyValue(readConfigFile(file), file, schema)
  const webroot = parsed.values.get('webroot') as string | undefined
  if (!webroot) throw new DsyncError(ExitCode.config, 'config.missingKey', { file, key: 'webroot' })
  return {
    file,
    // A relative webroot is taken from the home folder, not from wherever cron started us.
    webroot: resolve(dirname(file), webroot),
    trackers: (parsed.values.get('tracker') as string[] | undefined) ?? [],
    port: (parsed.values.get('port') as number | undefined) ?? DEFAULT_PORT,
    listen: (parsed.values.get('listen') as string[] | undefined) ?? [],
    dht: (parsed.values.get('dht') as boolean | undefined) ?? false,
    origins: parsed.origins,
    warnings: parsed.warnings,
  }
}

export function parseTrackers(raw: string): string[] {
  const urls = parseList(raw)
  for (const u of urls) {
    let url: URL
    try {
      url = new URL(u)
    } catch {
      throw new Error(`not a URL: "${u}"`)
    }
    if (!['http:', 'https:', 'udp:', 'ws:', 'wss:'].includes(url.protocol)) {
      throw new Error(`tracker URL must be http, https, udp, ws or wss: "${u}"`)
    }
  }
  return urls
}

function parseAddresses(raw: string): string[] {
  const list = parseList(raw)
  for (const a of list) if (!isIP(a)) throw new Error(`not an IP address: "${a}"`)
  return list
}
