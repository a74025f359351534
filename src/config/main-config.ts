import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { DsyncError, ExitCode } from '../errors.js'
import { SETTINGS } from './defaults.js'
import { parseBool, parseIntIn, parseKeyValue, parseList, parseMbit, parseNonEmpty, parseSetting, readConfigFile, type Origin } from './keyvalue.js'
import { mainRunnerSchema } from './runner-keys.js'

/** DSYNC's DTP port; named here too because tests and the init template read it from this module. */
export const DEFAULT_PORT = SETTINGS.port.default

/** `~/dxync/xync.conf`: settings shared by every repository of this host. */
export interface MainConfig {
  file: string
  webroot: string
  /** Announce URLs written into every torrent; never create-torrent's public defaults. */
  trackers: string[]
  port: number
  listen: string[]
  dht: boolean
  /** DHT nodes to start from (host:port); unset: bittorrent-dht's public defaults. */
  dhtBootstrap?: string[]
  /** The downstream runner's settings (syncps=, ipadd=, logdir=, webhookurl=, status=, ...). */
  runner: MainRunnerConfig
  /** The host's whole upload, Mbit/s; 0 = no limit. */
  uploadLimit: number
  /** Other DTP hosts (HOST[:PORT]) this host names to its clients, in its info and over ut_pex. */
  peers: string[]
  /** Limits against slow or hostile connections (docs/HOST.md, "Limits"); undefined = default. */
  headerTimeout?: number
  idleTimeout?: number
  maxConnPerAddress?: number
  origins: Map<string, Origin>
  warnings: string[]
}

const schema = {
  webroot: { parse: parseNonEmpty },
  tracker: { parse: parseTrackers },
  port: { parse: parseSetting(SETTINGS.port) },
  listen: { parse: parseAddresses },
  dht: { parse: parseBool },
  'dht-bootstrap': { parse: parseList },
  ...mainRunnerSchema,
  'upload-limit': { parse: parseMbit },
  peers: { parse: parseHostPorts },
  'header-timeout': { parse: parseIntIn(1, 3600) },
  'idle-timeout': { parse: parseIntIn(1, 86_400) },
  'max-conn-per-address': { parse: parseIntIn(1, 100_000) },
}

export interface MainRunnerConfig {
  /** Repositories synced at once (DSYNC's syncps=, 1..100). */
  syncps: number
  /** Local addresses downloads go out from, connections spread over all (DSYNC's ipadd=). */
  ipadd: string[]
  intra: boolean
  logdir: boolean
  logtime: boolean
  webhookUrl?: string
  /** DSYNC's status=DIR: DIR/dsync-status/REPO holds 0, 1 or 2. */
  statusDir?: string
  passErrorTemp: boolean
}

export function loadMainConfig(file: string): MainConfig {
  return parseMainConfig(readConfigFile(file), file)
}

/**
 * A main config built in memory (pull --seed, the demo): the values given, the defaults of
 * an xync.conf that names only its webroot for everything else.
 */
export function makeMainConfig(values: Partial<MainConfig> & { webroot: string }): MainConfig {
  return { ...parseMainConfig(`webroot=${values.webroot}\n`, '(in memory)'), ...values }
}

function parseMainConfig(text: string, file: string): MainConfig {
  const parsed = parseKeyValue(text, file, schema)
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
    dhtBootstrap: parsed.values.get('dht-bootstrap') as string[] | undefined,
    runner: runnerSettings(parsed.values, dirname(file)),
    uploadLimit: (parsed.values.get('upload-limit') as number | undefined) ?? 0,
    peers: (parsed.values.get('peers') as string[] | undefined) ?? [],
    headerTimeout: parsed.values.get('header-timeout') as number | undefined,
    idleTimeout: parsed.values.get('idle-timeout') as number | undefined,
    maxConnPerAddress: parsed.values.get('max-conn-per-address') as number | undefined,
    origins: parsed.origins,
    warnings: parsed.warnings,
  }
}

function runnerSettings(v: Map<string, unknown>, home: string): MainRunnerConfig {
  const statusDir = v.get('status') as string | undefined
  return {
    syncps: (v.get('syncps') as number | undefined) ?? SETTINGS.syncps.default,
    ipadd: (v.get('ipadd') as string[] | undefined) ?? [],
    intra: (v.get('intra') as boolean | undefined) ?? false,
    logdir: (v.get('logdir') as boolean | undefined) ?? false,
    logtime: (v.get('logtime') as boolean | undefined) ?? false,
    webhookUrl: v.get('webhookurl') as string | undefined,
    statusDir: statusDir === undefined ? undefined : resolve(home, statusDir),
    passErrorTemp: (v.get('pass-error-temp') as boolean | undefined) ?? false,
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

/** `HOST[:PORT]` or `[V6][:PORT]`, comma separated (port 1-65535; the DTP default when left out). */
function parseHostPorts(raw: string): string[] {
  const list = parseList(raw)
  for (const a of list) {
    const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(a) ?? /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(a)
    const port = m?.[2] === undefined ? 1 : Number(m[2])
    if (!m || port < 1 || port > 65535 || (a.startsWith('[') && isIP(m[1]) !== 6)) throw new Error(`not HOST[:PORT]: "${a}"`)
  }
  return list
}

function parseAddresses(raw: string): string[] {
  const list = parseList(raw)
  for (const a of list) if (!isIP(a)) throw new Error(`not an IP address: "${a}"`)
  return list
}
