import { readFileSync } from 'node:fs'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import type { IntRange } from './defaults.js'
import { parseInteger } from './integers.js'

/** Where a value came from, so every later error can name file and line. */
export interface Origin {
  file: string
  line: number
}

export interface KeyValueLine extends Origin {
  key: string
  value: string
}

/**
 * One value parser per known key. It returns the parsed value or throws a string
 * (the reason), which becomes a `file:line: invalid value` error.
 */
export type Schema = Record<string, { parse: (raw: string) => unknown; repeat?: boolean }>

export interface ParsedFile {
  file: string
  values: Map<string, unknown>
  origins: Map<string, Origin>
  warnings: string[]
  /** Lines whose keys `extra` accepted (ftpsync.conf variables in a repo config), as written. */
  extra: Map<string, KeyValueLine>
}

/**
 * DSYNC's format: `key=value` lines, `#` starts a comment line, blank lines ignored,
 * whitespace around key and value trimmed. A line without `=` is an error; an unknown
 * key is a warning (a newer dsync may know it); a key set twice is an error unless the
 * schema says it repeats (firewall.conf's allow=).
 */
export function parseKeyValue(text: string, file: string, schema: Schema, extra?: (key: string) => boolean): ParsedFile {
  const values = new Map<string, unknown>()
  const origins = new Map<string, Origin>()
  const warnings: string[] = []
  const extras = new Map<string, KeyValueLine>()
  for (const kv of splitLines(text, file)) {
    const spec = schema[kv.key]
    if (!spec && extra?.(kv.key)) {
      extras.set(kv.key, kv) // a shell file: the last assignment wins
      continue
    }
    if (!spec) {
      warnings.push(t('config.unknownKey', { file, line: kv.line, key: kv.key }))
      continue
    }
    const first = origins.get(kv.key)
    if (first && !spec.repeat) {
      throw new DsyncError(ExitCode.config, 'config.duplicateKey', { file, line: kv.line, key: kv.key, first: first.line })
    }
    let parsed: unknown
    try {
      parsed = spec.parse(kv.value)
    } catch (reason) {
      throw new DsyncError(ExitCode.config, 'config.badValue', {
        file, line: kv.line, key: kv.key, reason: reason instanceof Error ? reason.message : String(reason),
      })
    }
    if (spec.repeat) {
      const list = (values.get(kv.key) as unknown[] | undefined) ?? []
      list.push(...(Array.isArray(parsed) ? parsed : [parsed]))
      parsed = list
    }
    values.set(kv.key, parsed)
    if (!first) origins.set(kv.key, { file, line: kv.line })
  }
  return { file, values, origins, warnings, extra: extras }
}

export function splitLines(text: string, file: string): KeyValueLine[] {
  const out: KeyValueLine[] = []
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line === '' || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    const key = eq > 0 ? line.slice(0, eq).trim() : ''
    if (eq <= 0 || key === '' || /\s/.test(key)) {
      throw new DsyncError(ExitCode.config, 'config.malformed', { file, line: i + 1, text: truncate(line) })
    }
    out.push({ file, line: i + 1, key, value: line.slice(eq + 1).trim() })
  }
  return out
}

export function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw fsError(err, file, 'read')
  }
}

function truncate(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s
}

// Value parsers shared by the config files.

export function parseBool(raw: string): boolean {
  const v = raw.toLowerCase()
  if (['true', 'yes', 'on', '1'].includes(v)) return true
  if (['false', 'no', 'off', '0'].includes(v)) return false
  throw new Error(`expected true or false, got "${raw}"`)
}

export function parseList(raw: string): string[] {
  return raw.split(',').map(s => s.trim()).filter(s => s !== '')
}

export function parseIntIn(min: number, max: number) {
  return (raw: string): number => parseInteger(raw, { min, max })
}

/** A config value within a named setting's range (src/config/defaults.ts). */
export function parseSetting(range: IntRange) {
  return (raw: string): number => parseInteger(raw, range)
}

/** A rate in Mbit/s (`upload-limit=40`, `2.5`); 0 means no limit. */
export function parseMbit(raw: string): number {
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new Error(`expected megabits per second (a number such as 40 or 2.5; 0 = no limit), got "${raw}"`)
  const n = Number(raw)
  if (n > 1_000_000) throw new Error(`expected at most 1000000 Mbit/s, got ${n}`)
  return n
}

export function parseNonEmpty(raw: string): string {
  if (raw === '') throw new Error('empty value')
  return raw
}
