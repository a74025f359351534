import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { SETTINGS } from './defaults.js'
import { parseBool, parseIntIn, parseKeyValue, parseList, parseMbit, parseNonEmpty, parseSetting, readConfigFile, type Origin } from './keyvalue.js'
import { parseTrackers } from './main-config.js'
import { isFtpsyncVariable, repoRunnerSchema, unquote } from './runner-keys.js'

/** Files whose names match go in last when a mirror is updated (APT, YUM/DNF, Arch, Alpine). */
export const DEFAULT_INDEX_FILES = [
  'Release', 'Release.gpg', 'InRelease', 'Packages*', 'Sources*', 'Contents*', 'Translation-*',
  'repomd.xml*', '*.db', '*.db.sig', '*.files', 'APKINDEX.tar.gz', 'Index*', 'ls-lR*',
]

/** `~/dxync/repos/NAME.conf`: one repository, published (dsync=true) or synced (dsync-url=). */
export interface RepoConfig {
  file: string
  name: string
  /** Absolute folder holding the repository; relative `save=` values are taken from webroot. */
  save: string
  publish: boolean
  /** Upstream sources: dtp:// URLs, magnet links or .torrent paths/URLs. */
  sources: string[]
  statusFile?: string
  trackers?: string[]
  indexFiles: string[]
  /** Refuse a sync that would delete more than this share of the tree (percent). */
  deleteLimit: number
  retries: number
  connections: number
  /** Hours (0-23) at which the runner syncs this repo (DSYNC's timeset=); undefined: every run. */
  timeset?: number[]
  /** rsync first hop: rsync://HOST/MODULE/ (ours), or built from intraadd= (DSYNC's intranet mode). */
  rsyncUrl?: string
  intraAdd?: string
  ftpsync: boolean
  /** ftpsync.conf variables pasted into the repo config (RSYNC_HOST, MIRRORNAME, ...), unquoted. */
  ftpsyncVars: Map<string, string>
  rsyncOptions: string[]
  /** The upstream publisher's ed25519 public key (hex): records signed by another are refused. */
  key?: string
  /** Deltas gendsync keeps beside the record (docs/SCALE.md). */
  keepDeltas?: number
  /** This repository's upload when served, Mbit/s; 0 = only the host's limit. */
  uploadLimit: number
  origins: Map<string, Origin>
  warnings: string[]
}

const schema = {
  repo: { parse: parseRepoName },
  save: { parse: parseNonEmpty },
  dsync: { parse: parseBool },
  'dsync-url': { parse: parseList },
  status: { parse: parseNonEmpty },
  tracker: { parse: parseTrackers },
  'index-files': { parse: parseList },
  'delete-limit': { parse: parseSetting(SETTINGS.deleteLimit) },
  retries: { parse: parseSetting(SETTINGS.retries) },
  connections: { parse: parseSetting(SETTINGS.connections) },
  ...repoRunnerSchema,
  'dsync-key': { parse: parsePublicKey },
  'keep-deltas': { parse: parseIntIn(0, 100000) },
  'upload-limit': { parse: parseMbit },
}

export function loadRepoConfig(file: string, webroot: string): RepoConfig {
  return parseRepoConfig(readConfigFile(file), file, webroot)
}

/**
 * A repo config built in memory (pull --seed, the demo): the values given, the defaults of a
 * NAME.conf that names only repo= and an absolute save= for everything else.
 */
export function makeRepoConfig(values: Partial<RepoConfig> & { name: string; save: string }): RepoConfig {
  return { ...parseRepoConfig(`repo=${values.name}\nsave=${values.save}\n`, '(in memory)', '/'), ...values }
}

function parseRepoConfig(text: string, file: string, webroot: string): RepoConfig {
  const parsed = parseKeyValue(text, file, schema, isFtpsyncVariable)
  const v = parsed.values
  const name = v.get('repo') as string | undefined
  if (!name) throw new DsyncError(ExitCode.config, 'config.missingKey', { file, key: 'repo' })
  const save = v.get('save') as string | undefined
  if (!save) throw new DsyncError(ExitCode.config, 'config.missingKey', { file, key: 'save' })
  return {
    file,
    name,
    save: save.startsWith('/') ? save : join(webroot, save),
    publish: (v.get('dsync') as boolean | undefined) ?? false,
    sources: (v.get('dsync-url') as string[] | undefined) ?? [],
    statusFile: v.get('status') as string | undefined,
    trackers: v.get('tracker') as string[] | undefined,
    indexFiles: (v.get('index-files') as string[] | undefined) ?? DEFAULT_INDEX_FILES,
    deleteLimit: (v.get('delete-limit') as number | undefined) ?? SETTINGS.deleteLimit.default,
    retries: (v.get('retries') as number | undefined) ?? SETTINGS.retries.default,
    connections: (v.get('connections') as number | undefined) ?? SETTINGS.connections.default,
    timeset: v.get('timeset') as number[] | undefined,
    rsyncUrl: v.get('rsync-url') as string | undefined,
    intraAdd: v.get('intraadd') as string | undefined,
    ftpsync: (v.get('ftpsync') as boolean | undefined) ?? false,
    ftpsyncVars: new Map([...parsed.extra].map(([k, kv]) => [k, unquote(kv.value)])),
    rsyncOptions: (v.get('rsync-options') as string[] | undefined) ?? [],
    key: v.get('dsync-key') as string | undefined,
    keepDeltas: v.get('keep-deltas') as number | undefined,
    uploadLimit: (v.get('upload-limit') as number | undefined) ?? 0,
    origins: parsed.origins,
    warnings: parsed.warnings,
  }
}

/** Every `*.conf` in the repos folder, in name order so that errors come out the same each run. */
export function listRepoConfigFiles(dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw fsError(err, dir, 'read')
  }
  return names.filter(n => n.endsWith('.conf')).sort().map(n => join(dir, n))
}

/**
 * The one rule for repository names: a name becomes a file name (NAME.torrent, NAME.conf)
 * and a URL path segment (dtp://HOST/NAME), so it may not climb, hide or need escaping.
 */
export function isRepoName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)
}

function parseRepoName(raw: string): string {
  if (!isRepoName(raw)) {
    throw new Error(`"${raw}" must be letters, digits, '.', '_' or '-'`)
  }
  return raw
}

function parsePublicKey(raw: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) throw new Error('must be an ed25519 public key: 64 hex digits, as `dsync key` prints it')
  return raw.toLowerCase()
}
