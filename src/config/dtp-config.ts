import { BlockList, isIP } from 'node:net'
import { existsSync } from 'node:fs'
import { posix } from 'node:path'
import { DsyncError, ExitCode } from '../errors.js'
import { plainAddress } from '../shared/address.js'
import { parseKeyValue, parseList, readConfigFile } from './keyvalue.js'

/**
 * `dtp/list.conf`: one folder per line, relative to webroot (`/kali`), naming what this host
 * offers. Returned normalised without the leading slash (`kali`).
 */
export function loadListConf(file: string): string[] {
  const out: string[] = []
  const lines = readConfigFile(file).split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line === '' || line.startsWith('#')) continue
    const rel = posix.normalize('/' + line).replace(/^\/+|\/+$/g, '')
    // '..' is checked on the line as written: normalize() would quietly fold '/../etc' into 'etc'.
    if (rel === '' || line.split('/').includes('..') || line.includes('\0')) {
      throw new DsyncError(ExitCode.config, 'config.badValue', {
        file, line: i + 1, key: 'folder', reason: `"${line}" must name a folder inside webroot`,
      })
    }
    out.push(rel)
  }
  return out
}

/**
 * The allowlist of `dtp/firewall.conf`. `allow=` takes addresses and CIDR ranges, IPv4 and
 * IPv6, comma separated, on one or several lines. No allow= (or an empty one) means no
 * restriction, as in DSYNC.
 */
export interface Firewall {
  restricted: boolean
  entries: string[]
  allows(address: string): boolean
  /** Unknown keys, one line each naming file and line: a misspelt `allow=` leaves the host open, so they must reach the operator. */
  warnings?: string[]
}

export function loadFirewallConf(file: string): Firewall {
  const parsed = parseKeyValue(readConfigFile(file), file, { allow: { parse: parseAllowList, repeat: true } })
  return { ...makeFirewall((parsed.values.get('allow') as string[] | undefined) ?? []), warnings: parsed.warnings }
}

export function makeFirewall(entries: string[]): Firewall {
  const list = new BlockList()
  for (const e of entries) addRule(list, e)
  return {
    restricted: entries.length > 0,
    entries,
    allows(address: string): boolean {
      if (entries.length === 0) return true
      const v4 = plainAddress(address)
      const family = isIP(v4)
      if (family === 0) return false
      return list.check(v4, family === 4 ? 'ipv4' : 'ipv6')
    },
  }
}

function parseAllowList(raw: string): string[] {
  const entries = parseList(raw)
  for (const e of entries) addRule(new BlockList(), e)
  return entries
}

function addRule(list: BlockList, entry: string): void {
  const [addr, prefixText, extra] = entry.split('/')
  const family = isIP(addr)
  if (family === 0 || extra !== undefined) throw new Error(`not an address or CIDR range: "${entry}"`)
  const type = family === 4 ? 'ipv4' : 'ipv6'
  if (prefixText === undefined) {
    list.addAddress(addr, type)
    return
  }
  const max = family === 4 ? 32 : 128
  if (!/^\d+$/.test(prefixText) || Number(prefixText) > max) {
    throw new Error(`bad prefix length in "${entry}" (0..${max})`)
  }
  list.addSubnet(addr, Number(prefixText), type)
}

/**
 * The welcome message file: `경로=` in `dtp/motd.conf` (the Korean key, "path", is DSYNC's;
 * `path=` is accepted too), else the `motd file` of /etc/rsyncd.conf, else none.
 */
export function loadMotdPath(
  file: string, rsyncdConf = '/etc/rsyncd.conf', onWarning?: (message: string) => void,
): string | undefined {
  if (existsSync(file)) {
    const parsed = parseKeyValue(readConfigFile(file), file, {
      경로: { parse: (s: string) => s },
      path: { parse: (s: string) => s },
    })
    for (const w of parsed.warnings) onWarning?.(w)
    const chosen = (parsed.values.get('경로') ?? parsed.values.get('path')) as string | undefined
    if (chosen !== undefined) return chosen === '' ? undefined : chosen
  }
  return rsyncdMotdFile(rsyncd(rsyncdConf))
}

function rsyncd(file: string): string | undefined {
  try {
    return existsSync(file) ? readConfigFile(file) : undefined
  } catch {
    return undefined // an unreadable rsyncd.conf only means no default welcome message
  }
}

/**
 * `motd file = PATH` from the global section of an rsyncd.conf: before the first [module],
 * or in rsync 3's explicit `[global]` section. rsyncd ignores case and whitespace inside
 * parameter names, so `motdfile` and `MOTD  File` count too.
 */
export function rsyncdMotdFile(text: string | undefined): string | undefined {
  if (text === undefined) return undefined
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line.startsWith('[')) {
      if (/^\[\s*global\s*\]$/i.test(line)) continue
      break
    }
    const m = /^motd\s*file\s*=\s*(.+)$/i.exec(line)
    if (m) return m[1].trim()
  }
  return undefined
}

