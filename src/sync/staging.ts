import { execFile } from 'node:child_process'
import { closeSync, copyFileSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fsError } from '../errors.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { PartFds } from './part-fds.js'
import { aheadPath, sha256OfFd, STAGE_DIRS, stagedPath } from './part-writer.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { FetchList } from './fetch-list.js'
import type { AheadFilter } from './new-folders.js'

/** From this many staged files on, one filesystem-wide sync beats an fsync per file. */
export const SYNCFS_MIN_FILES = 256
const execFileAsync = promisify(execFile)

/** syncfs(2) of the filesystem holding `dir`, through coreutils' `sync -f`; false when that failed. */
async function syncFileSystem(dir: string): Promise<boolean> {
  try {
    await execFileAsync('sync', ['-f', dir])
    return true
  } catch {
    return false
  }
}

/**
 * `<dest>/.dsync/staging/`: content being fetched, named by its SHA-256. `<hex>.part` is
 * being written; `<hex>` has been verified against data.dsync and only waits to be moved
 * into place. The folder is inside DEST, so placing a file is a rename on one filesystem,
 * and it is under `.dsync/`, next to nothing a mirror's users browse. A killed run leaves it
 * as it was: the next run keeps every verified file and every verified piece of a part.
 * Pieces are written by the stage worker (`stage-writer.ts`, `part-writer.ts`); this class
 * does the rest on the event loop.
 */
export class Staging {
  readonly dir: string
  private readonly fds = new PartFds(hex => this.partPath(hex))
  /**
   * The folder's names when the run started, plus what this object staged: one readdir
   * instead of a failing stat per file of a bootstrap (200k files: 200k exceptions).
   */
  private readonly names: Set<string>
  /** Part files among `names` (none in a bootstrap: then no name is made to ask about one). */
  private parts = 0
  /** Content -> the entry whose mode and mtime its staged file gets when fetched (see wantMeta): the plan's own list. */
  private metaWanted = new FetchList()
  /** Which fetched files the stage workers place ahead, at their path under `folders/` (new-folders.ts); none when unset. */
  private ahead?: AheadFilter

  constructor(dest: string) {
    this.dir = join(dest, DSYNC_DIR, 'staging')
    this.names = new Set()
    try {
      mkdirSync(this.dir, { recursive: true })
      for (const sub of shardDirs()) {
        if (existsSync(join(this.dir, sub))) for (const name of readdirSync(join(this.dir, sub))) this.names.add(name)
      }
      for (const name of this.names) if (name.endsWith('.part')) this.parts++
    } catch (err) {
      throw fsError(err, this.dir, 'write')
    }
  }

  /** Nothing was staged when the run started, nor since: has() is false for every content. */
  get isEmpty(): boolean {
    return this.names.size === 0
  }

  /** Makes the subfolders (only a run that stages something leaves them). */
  prepare(): void {
    try {
      for (const sub of shardDirs()) mkdirSync(join(this.dir, sub), { recursive: true })
    } catch (err) {
      throw fsError(err, this.dir, 'write')
    }
  }

  path(hex: string): string {
    return stagedPath(this.dir, hex)
  }

  partPath(hex: string): string {
    return stagedPath(this.dir, hex, '.part')
  }

  /**
   * The staged file of each content is to get the mode and mtime of the entry it is fetched
   * for (the stage worker sets them on the open file), so that the apply only renames it. The
   * plan's own list, held, not copied; it also records which staged files got them (a byte per
   * content, not a Set of a million entries).
   */
  wantMeta(fetch: FetchList): void {
    this.metaWanted = fetch
  }

  /**
   * The number of the content whose staged file `hex` is to get its entry's mode and mtime, -1
   * for none (not without owner read: see fetchStage). A number, not the entry: one look-up of
   * the table per fetched file (a second one to mark it was 0.3 s of a 200,000-file bootstrap).
   */
  metaIdFor(hex: string): number {
    return this.metaIdAt(this.metaWanted.idOfHex(hex))
  }

  /** metaIdFor given the content's number in the plan's fetch list (`wantsMetaBy`): no look-up by name. */
  metaIdAt(id: number): number {
    return id >= 0 && this.metaWanted.entryAt(id).mode & 0o400 ? id : -1
  }

  /** Whether content numbers of `list` are the ones metaIdAt takes (it is the list wantMeta was given). */
  wantsMetaBy(list: unknown): boolean {
    return this.metaWanted !== undefined && this.metaWanted === list
  }

  /** The entry content number `id` (from metaIdFor) is fetched for. */
  metaEntry(id: number): ManifestEntry {
    return this.metaWanted.entryAt(id)
  }

  /** Fetched files for which `wants` names a path go ahead to it (see aheadFilter in new-folders.ts). */
  placeAhead(wants: AheadFilter): void {
    this.ahead = wants
  }

  /**
   * The stage worker is told to set the mode and mtime of content `id`'s entry (a failed write
   * ends the run); returns the path it is also told to place the file ahead at, if any
   * (recorded here first: the apply skips that file).
   */
  markMetaSet(id: number, entry: ManifestEntry = this.metaWanted.entryAt(id)): string | undefined {
    const ahead = this.ahead?.(entry)
    this.metaWanted.markMetaAt(id, ahead !== undefined ? 2 : 1)
    return ahead
  }

  /**
   * True when a file staged in this run already has this entry's mode and mtime; `id` is its
   * content's number in the plan's fetch list (known to the apply: no look-up of the table).
   */
  hasMetaAt(id: number, entry: ManifestEntry): boolean {
    return this.metaWanted.hasMetaAt(id, entry)
  }

  /** A verified copy of this content is staged already. */
  has(hex: string, size: number): boolean {
    if (!this.names.has(hex)) return false
    return statSync(this.path(hex), { throwIfNoEntry: false })?.size === size
  }

  /** A part file of this content was left by an earlier run. */
  hasPart(hex: string): boolean {
    return this.parts > 0 && this.names.has(`${hex}.part`) && existsSync(this.partPath(hex))
  }

  /** Reads `length` bytes of a part file at `offset` (zeros where nothing was written). */
  readPart(hex: string, offset: number, length: number): Buffer {
    const buf = Buffer.alloc(length)
    const fd = this.fd(hex)
    let done = 0
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done)
      if (n === 0) break
      done += n
    }
    return buf
  }

  /**
   * Checks a part whose pieces all verified (left by a killed run) against its SHA-256 and
   * makes it the staged file. No fsync here: `syncAll` flushes staged files together
   * before the apply (a SIGKILL loses nothing written anyway).
   */
  finalize(hex: string): boolean {
    const fd = this.fd(hex)
    const ok = sha256OfFd(fd) === hex
    this.fds.close(hex)
    if (!ok) {
      unlinkSync(this.partPath(hex))
      return false
    }
    renameSync(this.partPath(hex), this.path(hex))
    this.names.add(hex)
    return true
  }

  /** The empty file: in data.dsync only, never in the torrent. */
  putEmpty(hex: string): void {
    this.prepare()
    try {
      closeSync(openSync(this.path(hex), 'w', 0o644))
      this.names.add(hex)
    } catch (err) {
      throw fsError(err, this.path(hex), 'write')
    }
  }

  /**
   * Makes staged files durable before the commit. Many files: one syncfs(2) of DEST's
   * filesystem (`sync -f`): 20,000 files of 1.2 KB took 1.3 s, against 9.4 s for an fsync each,
   * eight at a time (each fsync of a new file is a journal commit). Few files, or no `sync`:
   * fsyncs on libuv's thread pool, several at once.
   */
  async syncAll(contents: ReadonlyMap<string, { path: string }>): Promise<void> {
    // The list of names only when each is to be fsync'ed (at 1M files an array of a million).
    if (contents.size >= SYNCFS_MIN_FILES && await syncFileSystem(this.dir)) return
    const queue = [...contents]
    const worker = async () => {
      for (let item = queue.pop(); item !== undefined; item = queue.pop()) {
        // A file placed ahead is at its path under folders/, not under its name.
        for (const path of [this.path(item[0]), aheadPath(this.dir, item[1].path)]) if (await syncIfThere(path)) break
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
  }

  /** Stages content DEST already has elsewhere; false if the copy does not verify. */
  copyIn(hex: string, from: string): boolean {
    this.prepare()
    const tmp = stagedPath(this.dir, hex, '.copy')
    try {
      copyFileSync(from, tmp, constants.COPYFILE_FICLONE)
    } catch (err) {
      throw fsError(err, from, 'read')
    }
    const fd = openSync(tmp, 'r')
    const ok = sha256OfFd(fd) === hex
    if (ok) fsyncSync(fd)
    closeSync(fd)
    if (!ok) {
      unlinkSync(tmp)
      return false
    }
    renameSync(tmp, this.path(hex))
    this.names.add(hex)
    return true
  }

  /**
   * Removes everything but the contents still wanted (by hex) and the folder itself (and its
   * subfolders while they hold something). Anything else at the top (the apply's temporary
   * names, an older flat layout) goes.
   */
  prune(keep: Set<string>): void {
    this.closeAll()
    const subs = new Set(shardDirs())
    for (const name of readdirSync(this.dir)) {
      if (!subs.has(name)) {
        rmSync(join(this.dir, name), { force: true, recursive: true })
        continue
      }
      const sub = join(this.dir, name)
      for (const inner of readdirSync(sub)) {
        const hex = inner.replace(/\.(part|copy)$/, '')
        if (!keep.has(hex) || inner.endsWith('.copy')) rmSync(join(sub, inner), { force: true, recursive: true })
      }
      removeIfEmpty(sub)
    }
  }

  closeAll(): void {
    this.fds.closeAll()
  }

  private fd(hex: string): number {
    try {
      return this.fds.get(hex)
    } catch (err) {
      throw fsError(err, this.partPath(hex), 'write')
    }
  }
}

/** fsync(2) of `path`; false when there is no such file. */
async function syncIfThere(path: string): Promise<boolean> {
  let fh: FileHandle | undefined
  try {
    fh = await open(path, 'r')
    await fh.sync()
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, path, 'write')
    return false
  } finally {
    await fh?.close()
  }
}

/** rmdir, which refuses a folder that still holds something (kept contents): no second readdir of a big folder. */
function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}

function shardDirs(): string[] {
  return Array.from({ length: STAGE_DIRS }, (_, i) => String(i))
}
