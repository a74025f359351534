import { isIP } from 'node:net'
import { SETTINGS } from './defaults.js'
import { parseInteger } from './integers.js'
import { parseBool, parseList, parseNonEmpty } from './keyvalue.js'

/**
 * The keys of DSYNC's downstream runner (`dsync`, `dsync -nolog`), parsed here so that
 * xync.conf and the repo configs only list them. Each parser throws the reason; the
 * config loader turns it into a `file:line:` error.
 */

/** xync.conf keys of the runner, with DSYNC's names. */
export const mainRunnerSchema = {
  syncps: { parse: (raw: string) => parseInteger(raw, SETTINGS.syncps) },
  ipadd: { parse: parseAddressList },
  intra: { parse: parseBool },
  logdir: { parse: parseBool },
  logtime: { parse: parseBool },
  webhookurl: { parse: parseWebhookUrl },
  status: { parse: parseNonEmpty },
  'pass-error-temp': { parse: parseBool },
  // DSYNC's switch for the ROKFOSS project's own mirror network; accepted so that a copied
  // xync.conf loads, and has no effect here.
  'rokfoss-sync': { parse: parseBool },
}

/** Repo config keys of the runner. */
export const repoRunnerSchema = {
  timeset: { parse: parseTimeset },
  'rsync-url': { parse: parseRsyncUrl },
  intraadd: { parse: parseHost },
  ftpsync: { parse: parseBool },
  'rsync-options': { parse: parseRsyncOptions },
}

/**
 * `timeset=00,06,12,18`: the hours (24 h clock, no minutes) at which a repository is due.
 * DSYNC's guide names the mistakes to refuse: `오후01` (a word for pm), `00:12` (minutes).
 */
export function parseTimeset(raw: string): number[] {
  const hours = new Set<number>()
  for (const item of parseList(raw)) {
    if (/^\d{1,2}:\d{1,2}$/.test(item)) throw new Error(`"${item}": hours only (00-23), minutes are not supported`)
    if (!/^\d{1,2}$/.test(item)) throw new Error(`"${item}" is not an hour (00-23, 24-hour clock, e.g. timeset=00,06,12,18)`)
    const h = Number(item)
    if (h > 23) throw new Error(`"${item}" is not an hour (00-23)`)
    hours.add(h)
  }
  if (hours.size === 0) throw new Error('no hours given (e.g. timeset=00,06,12,18)')
  return [...hours].sort((a, b) => a - b)
}

export function parseAddressList(raw: string): string[] {
  const list = parseList(raw)
  if (list.length === 0) throw new Error('no address given')
  for (const a of list) if (!isIP(a)) throw new Error(`not an IP address: "${a}"`)
  return list
}

function parseWebhookUrl(raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new Error(`not a URL: "${raw}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`webhook URL must be http or https: "${raw}"`)
  return raw
}

/** `rsync://HOST[:PORT]/MODULE[/PATH]`: the official mirror a first host copies from. */
export function parseRsyncUrl(raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new Error(`not a URL: "${raw}"`)
  }
  if (url.protocol !== 'rsync:') throw new Error(`expected rsync://HOST/MODULE, got "${raw}"`)
  if (!url.hostname || url.pathname.replace(/\//g, '') === '') throw new Error(`expected rsync://HOST/MODULE, got "${raw}"`)
  return raw.endsWith('/') ? raw : raw + '/'
}

function parseHost(raw: string): string {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(raw)) throw new Error(`not a host name or address: "${raw}"`)
  return raw
}

/** Extra rsync arguments; split on spaces (no shell runs them, so no quoting is needed). */
function parseRsyncOptions(raw: string): string[] {
  const args = raw.split(/\s+/).filter(s => s !== '')
  for (const a of args) if (!a.startsWith('-')) throw new Error(`rsync options must start with "-": "${a}"`)
  return args
}

/** ftpsync.conf's variables (`RSYNC_HOST="..."`): upper-case shell names, quotes optional. */
export function isFtpsyncVariable(key: string): boolean {
  return /^[A-Z][A-Z0-9_]*$/.test(key)
}

export function unquote(raw: string): string {
  const m = /^"(.*)"$/.exec(raw) ?? /^'(.*)'$/.exec(raw)
  return m ? m[1] : raw
}
