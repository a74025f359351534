import { randomFillSync } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { normal, sampleIndexes, seededRandom } from './random.js'

/**
 * Generated mirror-like trees for benchmarks: a `pool/` of nested folders
 * (pool/main/l/libfoo12/libfoo12_1.2-3_amd64.deb, as Debian lays it out), random contents
 * and old fixed mtimes, as rsync'ed mirror files have. The shape is a pure function of
 * the spec, and a tree already on disk with the same spec is reused.
 */
export interface TreeSpec {
  /** Used in the marker file only, to tell trees apart. */
  name: string
  files: number
  /** Sizes are drawn log-normally around `medianBytes` and clamped to [minBytes, maxBytes]. */
  medianBytes: number
  sigma: number
  minBytes: number
  maxBytes: number
  /** When set, sizes are scaled so they sum to about this. */
  totalBytes?: number
  seed: number
}

export interface TreeFile {
  path: string
  size: number
}

export interface GeneratedTree {
  root: string
  files: TreeFile[]
  bytes: number
  /** False when an existing tree of the same spec was reused. */
  created: boolean
  seconds: number
}

/** Upstream-like mtime of every generated file; changed files move forward from it. */
export const OLD_MTIME_S = Date.parse('2024-01-02T03:04:05Z') / 1000

const COMPONENTS = ['main', 'contrib', 'non-free']
const ARCHES = ['amd64', 'arm64', 'all', 'i386']

/** The files (paths and sizes) a spec describes, without touching the disk. */
export function planTree(spec: TreeSpec): TreeFile[] {
  const rand = seededRandom(spec.seed)
  let sizes = Array.from({ length: spec.files }, () =>
    Math.round(spec.medianBytes * Math.exp(spec.sigma * normal(rand))))
  const clamp = (s: number) => Math.min(spec.maxBytes, Math.max(spec.minBytes, s))
  sizes = sizes.map(clamp)
  if (spec.totalBytes) {
    // A few rounds: clamping moves the sum again after each scaling.
    for (let i = 0; i < 5; i++) {
      const sum = sizes.reduce((a, b) => a + b, 0)
      sizes = sizes.map(s => clamp(Math.round(s * spec.totalBytes! / sum)))
    }
  }
  const files: TreeFile[] = []
  // About 6 files a package (versions x arches), packages spread over letter folders.
  let pkg = 0
  let i = 0
  while (i < spec.files) {
    const comp = COMPONENTS[rand() < 0.85 ? 0 : rand() < 0.5 ? 1 : 2]
    const name = packageName(rand, pkg++)
    const dir = `pool/${comp}/${name.startsWith('lib') ? name.slice(0, 4) : name[0]}/${name}`
    const n = 1 + Math.floor(rand() * 10)
    for (let k = 0; k < n && i < spec.files; k++, i++) {
      const arch = ARCHES[k % ARCHES.length]
      files.push({ path: `${dir}/${name}_${1 + (k >> 2)}.${k % 7}-${pkg % 5}_${arch}.deb`, size: sizes[i] })
    }
  }
  return files
}

function packageName(rand: () => number, n: number): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz'
  const prefix = rand() < 0.3 ? 'lib' : ''
  let s = prefix
  const len = 3 + Math.floor(rand() * 8)
  for (let i = 0; i < len; i++) s += letters[Math.floor(rand() * 26)]
  return `${s}${n}`
}

/** Makes (or reuses) the tree under `root`; `fresh` removes whatever is there first. */
export function ensureTree(root: string, spec: TreeSpec, fresh: boolean, log: (m: string) => void = () => {}): GeneratedTree {
  const started = performance.now()
  const files = planTree(spec)
  const bytes = files.reduce((s, f) => s + f.size, 0)
  // Beside the tree, not in it: it must not count as one of its files.
  const marker = join(dirname(root), `${basename(root)}.bench-tree.json`)
  const want = JSON.stringify({ spec, files: files.length, bytes })
  if (!fresh && existsSync(marker) && readFileSync(marker, 'utf8') === want && looksIntact(root, files)) {
    return { root, files, bytes, created: false, seconds: (performance.now() - started) / 1000 }
  }
  rmSync(root, { recursive: true, force: true })
  rmSync(marker, { force: true })
  mkdirSync(root, { recursive: true })
  const buf = Buffer.allocUnsafe(1 << 20)
  const made = new Set<string>()
  let done = 0
  for (const f of files) {
    const dir = dirname(join(root, f.path))
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true })
      made.add(dir)
    }
    writeRandomFile(join(root, f.path), f.size, buf)
    utimesSync(join(root, f.path), OLD_MTIME_S, OLD_MTIME_S)
    if (++done % 20000 === 0) log(`  generated ${done}/${files.length} files`)
  }
  writeFileSync(marker, want)
  return { root, files, bytes, created: true, seconds: (performance.now() - started) / 1000 }
}

/** Spot-checks a sample of files: sizes unchanged since generation (benchmarks rewrite content in place, same size). */
function looksIntact(root: string, files: TreeFile[]): boolean {
  const rand = seededRandom(files.length)
  for (const i of sampleIndexes(rand, files.length, 200)) {
    try {
      if (statSync(join(root, files[i].path)).size !== files[i].size) return false
    } catch {
      return false
    }
  }
  return true
}

function writeRandomFile(path: string, size: number, buf: Buffer): void {
  const fd = openSync(path, 'w')
  try {
    let left = size
    while (left > 0) {
      const n = Math.min(left, buf.length)
      randomFillSync(buf, 0, n)
      let off = 0
      while (off < n) off += writeSync(fd, buf, off, n - off)
      left -= n
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Rewrites `count` random files with new random content of the same size and a new mtime,
 * still old but different from the one they had (as a mirror sync delivers an updated
 * package). Returns the paths changed.
 */
export function changeFiles(root: string, files: TreeFile[], count: number, seed: number): string[] {
  const rand = seededRandom(seed)
  const buf = Buffer.allocUnsafe(1 << 20)
  const changed: string[] = []
  for (const i of sampleIndexes(rand, files.length, count)) {
    const abs = join(root, files[i].path)
    const oldMtime = statSync(abs).mtimeMs / 1000
    writeRandomFile(abs, files[i].size, buf)
    const mtime = Math.floor(oldMtime) + 3600
    utimesSync(abs, mtime, mtime)
    changed.push(files[i].path)
  }
  return changed
}

/** One file of the tree replaced by a new version: where it was in `files`, and both versions. */
export interface Upload {
  index: number
  old: TreeFile
  added: TreeFile
}

/**
 * The shape of change a Debian mirror sees: a package's new version arrives under a new name
 * beside the old one, which goes (pool files are never rewritten in place), so the list gains
 * and loses entries and every later entry of a shard moves. Each of `count` random files is
 * replaced so: the new one in the same folder, another name, a size within +-10%, an mtime an
 * hour later. `files` is updated in place; undoUploads puts the generated tree back, so a
 * later run can reuse it.
 */
export function uploadFiles(root: string, files: TreeFile[], count: number, seed: number): Upload[] {
  const rand = seededRandom(seed)
  const buf = Buffer.allocUnsafe(1 << 20)
  const uploads: Upload[] = []
  for (const index of sampleIndexes(rand, files.length, count)) {
    const old = files[index]
    // name_1.2-3_amd64.deb -> name_1.2-3+b<tag>_amd64.deb: a binNMU's name, sorted beside the old.
    const cut = old.path.lastIndexOf('_')
    const tag = Math.floor(rand() * 2 ** 32).toString(36)
    const added = { path: `${old.path.slice(0, cut)}+b${tag}${old.path.slice(cut)}`, size: Math.max(1, Math.round(old.size * (0.9 + rand() * 0.2))) }
    writeRandomFile(join(root, added.path), added.size, buf)
    utimesSync(join(root, added.path), OLD_MTIME_S + 3600, OLD_MTIME_S + 3600)
    rmSync(join(root, old.path))
    files[index] = added
    uploads.push({ index, old, added })
  }
  return uploads
}

/** Undoes uploadFiles, last first (a round may have replaced an earlier round's new version). */
export function undoUploads(root: string, files: TreeFile[], uploads: Upload[]): void {
  const buf = Buffer.allocUnsafe(1 << 20)
  for (const u of [...uploads].reverse()) {
    rmSync(join(root, u.added.path), { force: true })
    writeRandomFile(join(root, u.old.path), u.old.size, buf)
    utimesSync(join(root, u.old.path), OLD_MTIME_S, OLD_MTIME_S)
    files[u.index] = u.old
  }
}
