import { closeSync, existsSync, fsyncSync, openSync, renameSync, unlinkSync, write, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fsError } from '../errors.js'

/**
 * Writes `data` to `path` so that readers see the old file or the new one, never a part:
 * a temporary file in the same folder, fsync, rename. On failure (disk full) the old file
 * is untouched and the temporary one removed.
 */
export function writeFileAtomic(path: string, data: Buffer | string, mode = 0o644): void {
  const tmp = tmpName(path)
  let fd: number | undefined
  try {
    fd = openSync(tmp, 'w', mode)
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    let off = 0
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off)
    fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    renameSync(tmp, path)
  } catch (err) {
    throw abandon(err, path, tmp, fd)
  }
}

/** All of `data` written to `fd` on libuv's threads (a short write goes on from where it stopped). */
export function writeAll(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const from = (off: number) => write(fd, data, off, data.length - off, null, (err, n) => {
      if (err) reject(err)
      else if (off + n < data.length) from(off + n)
      else resolve()
    })
    from(0)
  })
}

/** After a failed write: the temporary file closed and removed, the error to throw (naming `path`). */
function abandon(err: unknown, path: string, tmp: string, fd: number | undefined): Error {
  if (fd !== undefined) closeSync(fd)
  try {
    unlinkSync(tmp)
  } catch {
    // the temporary file may not exist; the original error is the one to report
  }
  return fsError(err, path, 'write')
}

export function tmpName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}`)
}

/** Writes each [path, text] whose path does not exist yet; never overwrites. Returns what it created. */
export function writeFilesIfMissing(files: [string, string][]): string[] {
  const created: string[] = []
  for (const [file, text] of files) {
    if (existsSync(file)) continue
    writeFileAtomic(file, text)
    created.push(file)
  }
  return created
}
