import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import type { ManifestEntry } from './entry.js'
import { parseManifest } from './format.js'
import { hashFiles, type HashJob } from './hash-pool.js'
import { DSYNC_DIR, MANIFEST_NAME } from './paths.js'
import { scanTree, type ScannedEntry } from './scan.js'

export type MismatchKind = 'missing' | 'extra' | 'type' | 'mode' | 'mtime' | 'size' | 'target' | 'content'

export interface Mismatch {
  path: string
  kind: MismatchKind
  expected?: string
  actual?: string
}

export interface VerifyResult {
  dir: string
  entries: number
  hashedBytes: number
  mismatches: Mismatch[]
  seconds: number
}

export interface VerifyOptions {
  onProgress?: (done: number, total: number, bytesDone: number, bytesTotal: number) => void
  onWarning?: (message: string) => void
  threads?: number
}

/** Re-reads every file of `dir` and compares the tree with its `.dsync/data.dsync`. */
export async function verifyTree(dir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const started = Date.now()
  const manifestFile = join(dir, DSYNC_DIR, MANIFEST_NAME)
  let data: Buffer
  try {
    data = readFileSync(manifestFile)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DsyncError(ExitCode.badData, 'manifest.missing', { file: manifestFile })
    throw fsError(err, manifestFile, 'read')
  }
  const manifest = parseManifest(data, manifestFile)
  const onDisk = new Map(scanTree(dir, { excludeTop: [DSYNC_DIR], onWarning: opts.onWarning }).map(e => [e.path, e]))
  const mismatches: Mismatch[] = []
  const jobs: HashJob[] = []
  const expectedHash: ManifestEntry[] = []
  for (const want of manifest.entries) {
    const have = onDisk.get(want.path)
    onDisk.delete(want.path)
    if (!have) {
      mismatches.push({ path: want.path, kind: 'missing' })
      continue
    }
    const before = mismatches.length
    compareMetadata(want, have, mismatches)
    if (mismatches.length === before && want.type === 'f') {
      jobs.push({ id: jobs.length, path: join(dir, want.path), size: have.size, mtimeMs: have.mtimeMs, ino: have.ino })
      expectedHash.push(want)
    }
  }
  for (const extra of onDisk.values()) mismatches.push({ path: extra.path, kind: 'extra', actual: extra.type })
  const bytesTotal = jobs.reduce((s, j) => s + j.size, 0)
  let done = 0
  let bytesDone = 0
  await hashFiles(jobs, 0, (job, d) => {
    const want = expectedHash[job.id]
    if (!d.sha256.equals(want.sha256!)) {
      mismatches.push({ path: want.path, kind: 'content', expected: want.sha256!.toString('hex'), actual: d.sha256.toString('hex') })
    }
    bytesDone += job.size
    opts.onProgress?.(++done, jobs.length, bytesDone, bytesTotal)
  }, opts.threads)
  mismatches.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { dir, entries: manifest.entries.length, hashedBytes: bytesTotal, mismatches, seconds: (Date.now() - started) / 1000 }
}

function compareMetadata(want: ManifestEntry, have: ScannedEntry, out: Mismatch[]): void {
  const add = (kind: MismatchKind, expected: unknown, actual: unknown): void => {
    out.push({ path: want.path, kind, expected: String(expected), actual: String(actual) })
  }
  if (want.type !== have.type) return add('type', want.type, have.type)
  if (want.type === 'l' || want.type === 'h') {
    if (want.target !== have.target) add('target', want.target, have.target)
    // A hardlink's mode and mtime are its file's, checked on that entry.
    if (want.type === 'h') return
  }
  if (want.type === 'f' && want.size !== have.size) add('size', want.size, have.size)
  if (want.type !== 'l' && want.mode !== have.mode) add('mode', want.mode.toString(8), have.mode.toString(8))
  if (want.mtime !== have.mtime) add('mtime', want.mtime, have.mtime)
}
