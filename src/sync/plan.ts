import { join } from 'node:path'
import type { ManifestEntry } from '../manifest/entry.js'
import type { Manifest } from '../manifest/format.js'
import { hashFiles, type HashJob } from '../manifest/hash-pool.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { scanTree, type ScannedEntry } from '../manifest/scan.js'
import { planDeletes } from './deletes.js'
import { EntryList } from './entry-list.js'
import { FetchList } from './fetch-list.js'
import { depth, parentOf } from './tree-paths.js'

/**
 * What it takes to turn DEST into the upstream generation. Content is addressed by SHA-256:
 * a file is fetched once however many paths hold it, and content DEST already has under
 * another path (a rename upstream) is copied locally instead of fetched.
 */
export interface Plan {
  /** New directories, parents first. */
  mkdirs: ManifestEntry[]
  /**
   * Upstream 'f' entries whose content must be placed (fetched, copied or staged already): the
   * client's file entries as row numbers (entry-list.ts), no object per file through the run.
   */
  place: EntryList
  /** Contents to download: SHA-256 hex -> the first entry holding it (read as a Map; no hex string kept). */
  fetch: FetchList
  /** Contents DEST holds under some path: SHA-256 hex -> absolute path of a verified copy. */
  local: Map<string, string>
  /** Files whose content is right but whose mode or mtime is not. */
  touch: ManifestEntry[]
  /** Symlinks and hardlinks to (re)create. */
  links: ManifestEntry[]
  /** Local entries of another type standing where an upstream entry goes. */
  conflicts: ScannedEntry[]
  /** Local entries upstream does not have, deepest first. */
  deletes: ScannedEntry[]
  /** Local entries inside a conflicting folder, lost with it when it is moved aside. */
  displaced: ScannedEntry[]
  /** Directories whose mode or mtime must be set at the end. */
  dirMeta: ManifestEntry[]
  localEntries: number
  fetchBytes: number
  /** Paths DEST lacks (or holds as another type), and paths whose content or target changes. */
  added: string[]
  /** How many paths are added: `added` lists them only when the plan was asked to (`listAdded`). */
  addedCount: number
  changed: string[]
}

export interface PlanOptions {
  dest: string
  upstream: Manifest
  /** DEST's own data.dsync (its last synced generation), when it has a valid one. */
  previous?: Manifest
  onWarning?: (message: string) => void
  /** Hash local files whose size and mtime match but that no local data.dsync vouches for. */
  threads?: number
  /** Lists the added paths in `added` (what `diff` and a dry run print); else only counts them. */
  listAdded?: boolean
}

export async function makePlan(opts: PlanOptions): Promise<Plan> {
  const local = new Map<string, ScannedEntry>()
  for (const e of scanTree(opts.dest, { excludeTop: [DSYNC_DIR], onWarning: opts.onWarning })) local.set(e.path, e)
  const sha = await trustedHashes(opts, local)
  const dirs = new Map(opts.upstream.entries.filter(e => e.type === 'd').map(e => [e.path, e]))
  return planEntries({ dest: opts.dest, local, sha, upstream: opts.upstream.entries, folder: p => dirs.get(p), localEntries: local.size, listAdded: opts.listAdded })
}

/** What planEntries weighs: the local entries at the paths planned, and the upstream ones. */
export interface EntriesInput {
  dest: string
  /** Local entries by path: every one of DEST (makePlan), or those at the paths planned (delta-plan.ts). */
  local: Map<string, ScannedEntry>
  /** SHA-256 hex of the local files the plan may trust, by path. */
  sha: Map<string, string>
  /** Upstream entries to plan, in data.dsync order; a local entry of `local` not among them is deleted. */
  upstream: Iterable<ManifestEntry>
  /** Upstream's folder at a path (its mode and mtime are set back after the apply wrote into it). */
  folder: (path: string) => ManifestEntry | undefined
  /** How many entries DEST holds (the delete guard's base). */
  localEntries: number
  /**
   * false: the added paths are counted, not listed. A bootstrap adds every path (a million at
   * 1M files: an array of them was ~10 MB of the client's heap from the plan to the commit), and
   * only a dry run prints them. Listed unless told otherwise.
   */
  listAdded?: boolean
}

/** The plan of `upstream` against `local`; each entry by its kind's handler, then deletions and folder times. */
export function planEntries(input: EntriesInput): Plan {
  const { local, sha } = input
  const plan: Plan = {
    mkdirs: [], place: new EntryList(), fetch: new FetchList(), local: new Map(), touch: [], links: [], conflicts: [], deletes: [], displaced: [], dirMeta: [],
    localEntries: input.localEntries, fetchBytes: 0, added: [], addedCount: 0, changed: [],
  }
  const listAdded = input.listAdded !== false
  for (const [path, hex] of sha) if (!plan.local.has(hex)) plan.local.set(hex, join(input.dest, path))
  // Into an empty DEST (a bootstrap) nothing is deleted: no set of every upstream path.
  const wanted = local.size > 0 ? new Set<string>() : undefined
  for (const u of input.upstream) {
    wanted?.add(u.path)
    const l = local.size > 0 ? local.get(u.path) : undefined
    const sameType = l !== undefined && fileOr(l.type) === fileOr(u.type)
    if (l && !sameType) plan.conflicts.push(l)
    if ((!l || !sameType) && u.type !== 'd') {
      plan.addedCount++
      if (listAdded) plan.added.push(u.path)
    }
    PLAN_BY_KIND[u.type]({ plan, u, l: sameType ? l : undefined, local, sha })
  }
  if (wanted) planDeletes(plan, local, wanted)
  planDirMeta(plan, input.folder)
  // Held to the apply: exact-length copies, not what push grew (up to the length again in
  // spare room), this and the fetch list's.
  plan.place.trim()
  plan.fetch.trim()
  return plan
}

/**
 * SHA-256 of the local files the plan may trust, by path. Local files that look right by size
 * and mtime but that DEST's data.dsync does not vouch for (first sync onto an rsync'ed tree,
 * or a run killed mid-apply) are hashed.
 */
async function trustedHashes(opts: PlanOptions, local: Map<string, ScannedEntry>): Promise<Map<string, string>> {
  // No local file (a bootstrap): no map of every upstream file to compare with.
  if (!hasFiles(local)) return new Map()
  const vouched = new Map<string, ManifestEntry>()
  for (const e of opts.previous?.entries ?? []) if (e.type === 'f' || e.type === 'h') vouched.set(e.path, e)
  const upstreamFiles = new Map<string, ManifestEntry>()
  for (const e of opts.upstream.entries) if (e.type === 'f') upstreamFiles.set(e.path, e)
  return hashesFor(opts.dest, local, p => vouched.get(p), p => upstreamFiles.get(p), opts.threads)
}

/**
 * The trust rule of trustedHashes for any set of local entries: `vouched` is DEST's own list
 * ('f' and 'h' entries), `upstreamFile` the new list's 'f' entries.
 */
export async function hashesFor(
  dest: string, local: Map<string, ScannedEntry>, vouched: (path: string) => ManifestEntry | undefined,
  upstreamFile: (path: string) => ManifestEntry | undefined, threads?: number,
): Promise<Map<string, string>> {
  const sha = new Map<string, string>()
  const toHash: { job: HashJob; path: string }[] = []
  for (const [path, l] of local) {
    // The scan names the second and later paths of an inode 'h'; each is a file all the same.
    if (l.type !== 'f' && l.type !== 'h') continue
    const v = vouched(path)
    const u = upstreamFile(path)
    // Upstream's new content with the old size and mtime: only the bytes tell which one is
    // here (a run killed mid-apply may have placed the new one already).
    const ambiguous = u !== undefined && u.size === l.size && u.mtime === l.mtime && v !== undefined && !u.sha256!.equals(v.sha256!)
    if (v && v.size === l.size && v.mtime === l.mtime && !ambiguous) sha.set(path, v.sha256!.toString('hex'))
    else if (u && u.size === l.size) toHash.push({ job: { id: toHash.length, path: join(dest, path), size: l.size, mtimeMs: l.mtimeMs, ino: l.ino }, path })
  }
  await hashFiles(toHash.map(x => x.job), 0, (job, d) => sha.set(toHash[job.id].path, d.sha256.toString('hex')), threads)
  return sha
}

function hasFiles(local: Map<string, ScannedEntry>): boolean {
  for (const l of local.values()) if (l.type === 'f' || l.type === 'h') return true
  return false
}

/** One upstream entry against what DEST has at its path (`l`: only when of the same kind). */
interface EntryCase {
  plan: Plan
  u: ManifestEntry
  l: ScannedEntry | undefined
  local: Map<string, ScannedEntry>
  sha: Map<string, string>
}

/** Each kind of entry is planned by its own handler. */
const PLAN_BY_KIND: Record<ManifestEntry['type'], (c: EntryCase) => void> = {
  d: planDir,
  f: planFile,
  l: planSymlink,
  h: planHardlink,
}

function planDir({ plan, u, l }: EntryCase): void {
  if (!l) plan.mkdirs.push(u)
  if (!l || l.mode !== u.mode || l.mtime !== u.mtime) plan.dirMeta.push(u)
}

/** Content is addressed by SHA-256: fetched once however many paths hold it, copied when DEST has it elsewhere. */
function planFile({ plan, u, l, sha }: EntryCase): void {
  // The hex name only when there is something local to compare it with (none in a bootstrap).
  const hex = l || plan.local.size > 0 ? u.sha256!.toString('hex') : undefined
  if (l && sha.get(u.path) === hex) {
    if (l.mode !== u.mode || l.mtime !== u.mtime) plan.touch.push(u)
    return
  }
  if (l) plan.changed.push(u.path)
  plan.place.push(u)
  if ((hex === undefined || !plan.local.has(hex)) && plan.fetch.add(u)) plan.fetchBytes += u.size
}

function planSymlink({ plan, u, l }: EntryCase): void {
  if (!l || l.target !== u.target) {
    if (l) plan.changed.push(u.path)
    plan.links.push(u)
  } else if (l.mtime !== u.mtime) plan.links.push(u)
}

function planHardlink({ plan, u, l, local, sha }: EntryCase): void {
  const target = local.get(u.target!)
  const linked = l !== undefined && target !== undefined && fileOr(target.type) === 'f' && target.ino === l.ino &&
    sha.get(u.target!) === u.sha256!.toString('hex')
  if (!linked) {
    if (l) plan.changed.push(u.path)
    plan.links.push(u)
  }
}

/**
 * Every folder the apply writes into gets a new mtime from the kernel; it is set back to
 * upstream's at the end, after the last rename or unlink inside it. Children before parents.
 */
function planDirMeta(plan: Plan, folder: (path: string) => ManifestEntry | undefined): void {
  const inMeta = new Set(plan.dirMeta.map(d => d.path))
  const visit = (parent: string) => {
    const d = parent === '' ? undefined : folder(parent)
    if (d && !inMeta.has(d.path)) {
      inMeta.add(d.path)
      plan.dirMeta.push(d)
    }
  }
  // The placed files by their folder's path as the list has it (a row's folder entry's own
  // string: no path made and cut per file), a folder once per run of its files (they come
  // folder by folder): each made, sliced and looked up twice was ~0.25 s of a 200,000-file
  // bootstrap's plan in a loaded profile.
  let last: string | undefined
  for (let i = 0; i < plan.place.length; i++) {
    const parent = plan.place.parentAt(i)
    if (parent === last) continue
    last = parent
    visit(parent)
  }
  // Each other entry's parent looked up in turn: no list of a parent path per entry.
  for (const list of [plan.links, plan.mkdirs, plan.conflicts, plan.deletes] as Iterable<{ path: string }>[]) {
    for (const e of list) visit(parentOf(e.path))
  }
  plan.dirMeta.sort((a, b) => depth(b.path) - depth(a.path))
}

/** Nothing to change in DEST. */
export function isEmpty(p: Plan): boolean {
  return p.mkdirs.length + p.place.length + p.touch.length + p.links.length + p.conflicts.length + p.deletes.length + p.dirMeta.length === 0
}

/** What `diff` and `pull --dry-run` print. */
export function describePlan(p: Plan): { added: string[]; changed: string[]; removed: string[] } {
  return { added: p.added, changed: p.changed, removed: [...p.deletes, ...p.displaced].map(e => e.path) }
}

export function fileOr(type: string): string {
  return type === 'h' ? 'f' : type
}

/** Basename patterns with `*` and `?`, as in index-files= ("Packages*", "repomd.xml"). */
export function indexMatcher(patterns: string[]): (path: string) => boolean {
  // Asked for every file of a pull (aheadFilter, the apply's passes): the default list as 14
  // expressions tested on a sliced basename was 0.41 s of a 200,000-file bootstrap's event loop,
  // and as one expression with alternatives (`.*\.db` scans and backtracks) still ~0.2 s. Names,
  // prefixes (`Packages*`) and suffixes (`*.db`) are compared in place; anything else is an expression.
  const exact: string[] = []
  const prefixes: string[] = []
  const suffixes: string[] = []
  const others: RegExp[] = []
  for (const p of patterns) {
    const star = p.indexOf('*')
    const oneStar = star >= 0 && star === p.lastIndexOf('*') && !p.includes('?')
    if (star < 0 && !p.includes('?')) exact.push(p)
    else if (oneStar && star === p.length - 1) prefixes.push(p.slice(0, -1))
    else if (oneStar && star === 0) suffixes.push(p.slice(1))
    else others.push(new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$'))
  }
  return path => {
    const at = path.lastIndexOf('/') + 1
    const length = path.length - at
    for (const s of exact) if (length === s.length && path.startsWith(s, at)) return true
    for (const s of prefixes) if (path.startsWith(s, at)) return true
    for (const s of suffixes) if (length >= s.length && path.endsWith(s)) return true
    return others.length > 0 && others.some(r => r.test(path.slice(at)))
  }
}
