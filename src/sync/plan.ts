import { join } from 'node:path'
import type { ManifestEntry } from '../manifest/entry.js'
import type { Manifest } from '../manifest/format.js'
import { hashFiles, type HashJob } from '../manifest/hash-pool.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { scanTree, type ScannedEntry } from '../manifest/scan.js'

/**
 * What it takes to turn DEST into the upstream generation. Content is addressed by SHA-256:
 * a file is fetched once however many paths hold it, and content DEST already has under
 * another path (a rename upstream) is copied locally instead of fetched.
 */
export interface Plan {
  /** New directories, parents first. */
  mkdirs: ManifestEntry[]
  /** Upstream 'f' entries whose content must be placed (fetched, copied or staged already). */
  place: ManifestEntry[]
  /** Contents to download: SHA-256 hex -> the first entry holding it. */
  fetch: Map<string, ManifestEntry>
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
}

export async function makePlan(opts: PlanOptions): Promise<Plan> {
  const local = new Map<string, ScannedEntry>()
  for (const e of scanTree(opts.dest, { excludeTop: [DSYNC_DIR], onWarning: opts.onWarning })) local.set(e.path, e)
  const vouched = new Map<string, ManifestEntry>()
  for (const e of opts.previous?.entries ?? []) if (e.type === 'f' || e.type === 'h') vouched.set(e.path, e)

  // Local files that look right by size and mtime but that DEST's data.dsync does not
  // vouch for (first sync onto an rsync'ed tree, or a run killed mid-apply) are hashed.
  const sha = new Map<string, string>() // local path -> sha256 hex, for local files we trust
  const toHash: { job: HashJob; path: string }[] = []
  const upstreamFiles = new Map<string, ManifestEntry>()
  for (const e of opts.upstream.entries) if (e.type === 'f') upstreamFiles.set(e.path, e)
  for (const [path, l] of local) {
    // The scan names the second and later paths of an inode 'h'; each is a file all the same.
    if (l.type !== 'f' && l.type !== 'h') continue
    const v = vouched.get(path)
    const u = upstreamFiles.get(path)
    // Upstream's new content with the old size and mtime: only the bytes tell which one is
    // here (a run killed mid-apply may have placed the new one already).
    const ambiguous = u !== undefined && u.size === l.size && u.mtime === l.mtime && v !== undefined && !u.sha256!.equals(v.sha256!)
    if (v && v.size === l.size && v.mtime === l.mtime && !ambiguous) sha.set(path, v.sha256!.toString('hex'))
    else if (u && u.size === l.size) toHash.push({ job: { id: toHash.length, path: join(opts.dest, path), size: l.size, mtimeMs: l.mtimeMs, ino: l.ino }, path })
  }
  await hashFiles(toHash.map(x => x.job), 0, (job, d) => sha.set(toHash[job.id].path, d.sha256.toString('hex')), opts.threads)

  const plan: Plan = {
    mkdirs: [], place: [], fetch: new Map(), local: new Map(), touch: [], links: [], conflicts: [], deletes: [], displaced: [], dirMeta: [],
    localEntries: local.size, fetchBytes: 0, added: [], changed: [],
  }
  for (const [path, hex] of sha) if (!plan.local.has(hex)) plan.local.set(hex, join(opts.dest, path))

  const wanted = new Set<string>()
  for (const u of opts.upstream.entries) {
    wanted.add(u.path)
    const l = local.get(u.path)
    const sameType = l !== undefined && fileOr(l.type) === fileOr(u.type)
    if (l && !sameType) plan.conflicts.push(l)
    if ((!l || !sameType) && u.type !== 'd') plan.added.push(u.path)
    switch (u.type) {
      case 'd':
        if (!l || !sameType) plan.mkdirs.push(u)
        if (!l || !sameType || l.mode !== u.mode || l.mtime !== u.mtime) plan.dirMeta.push(u)
        break
      case 'f': {
        const hex = u.sha256!.toString('hex')
        if (sameType && sha.get(u.path) === hex) {
          if (l.mode !== u.mode || l.mtime !== u.mtime) plan.touch.push(u)
          break
        }
        if (sameType) plan.changed.push(u.path)
        plan.place.push(u)
        if (!plan.local.has(hex) && !plan.fetch.has(hex)) {
          plan.fetch.set(hex, u)
          plan.fetchBytes += u.size
        }
        break
      }
      case 'l':
        if (!sameType || l.target !== u.target) {
          if (sameType) plan.changed.push(u.path)
          plan.links.push(u)
        } else if (l.mtime !== u.mtime) plan.links.push(u)
        break
      case 'h': {
        const target = local.get(u.target!)
        const linked = sameType && target !== undefined && fileOr(target.type) === 'f' && target.ino === l.ino &&
          sha.get(u.target!) === u.sha256!.toString('hex')
        if (!linked) {
          if (sameType) plan.changed.push(u.path)
          plan.links.push(u)
        }
        break
      }
    }
  }
  // A conflicting local folder is moved aside whole, children included: what is under it
  // is lost like a deletion, so it counts for the delete guard and in `diff`.
  const conflicted = new Set(plan.conflicts.map(c => c.path))
  const underConflict = (path: string) => {
    for (let p = path; p !== ''; p = parentOf(p)) if (conflicted.has(p)) return true
    return false
  }
  for (const [path, l] of local) {
    if (underConflict(path)) {
      if (!conflicted.has(path)) plan.displaced.push(l)
    } else if (!wanted.has(path)) plan.deletes.push(l)
  }
  // Every folder the apply writes into gets a new mtime from the kernel; it is set back to
  // upstream's at the end, after the last rename or unlink inside it.
  const dirs = new Map(opts.upstream.entries.filter(e => e.type === 'd').map(e => [e.path, e]))
  const inMeta = new Set(plan.dirMeta.map(d => d.path))
  const touched = [...plan.place, ...plan.links, ...plan.mkdirs, ...plan.conflicts, ...plan.deletes].map(e => parentOf(e.path))
  for (const parent of touched) {
    const d = parent === '' ? undefined : dirs.get(parent)
    if (d && !inMeta.has(d.path)) {
      inMeta.add(d.path)
      plan.dirMeta.push(d)
    }
  }
  // Children before parents, so each folder is empty when its turn comes.
  plan.deletes.sort((a, b) => depth(b.path) - depth(a.path) || (a.path < b.path ? 1 : -1))
  plan.dirMeta.sort((a, b) => depth(b.path) - depth(a.path))
  return plan
}

function fileOr(type: string): string {
  return type === 'h' ? 'f' : type
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/')
  return slash < 0 ? '' : path.slice(0, slash)
}

function depth(path: string): number {
  let d = 0
  for (const ch of path) if (ch === '/') d++
  return d
}

/** Basename patterns with `*` and `?`, as in index-files= ("Packages*", "repomd.xml"). */
export function indexMatcher(patterns: string[]): (path: string) => boolean {
  const res = patterns.map(p => new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$'))
  return path => {
    const base = path.slice(path.lastIndexOf('/') + 1)
    return res.some(r => r.test(base))
  }
}
