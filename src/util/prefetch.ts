import { closeSync, fstatSync, openSync, read, statSync, type Stats } from 'node:fs'

/**
 * Files read on libuv's threads while the main thread does other work, each in one whole-file
 * read: no main-thread turn is needed between its start and its end (fs.readFile reads in
 * 512 KiB chunks, each started from the event loop, which a synchronous caller holds). Their
 * pages are first touched by those threads, not by the caller. A file that cannot be read
 * whole is left out: the caller reads it itself, and meets the error itself.
 */
export function prefetchFiles(paths: string[]): Promise<Map<string, Buffer>> {
  return prefetchStamped(paths).then(got => new Map([...got].map(([path, r]) => [path, r.buf])))
}

/** A file's identity when it was read: a later `sameFile` tells whether the path still names those bytes. */
export interface FileStamp {
  dev: number
  ino: number
  size: number
  mtimeMs: number
  ctimeMs: number
}

const align8 = (n: number) => Math.ceil(n / 8) * 8

/**
 * prefetchFiles, each file with its stamp (fstat of the descriptor read), for a caller that reads
 * before it holds a lock.
 *
 * The files are read into views of one buffer: a hinted gendsync's previous shard files are
 * ~1.6 MB each at 200k files, each its own allocation below the 2 MiB of a huge page, so with
 * malloc in huge pages (cli/launch.ts) the kernel still faulted them in 4 KiB at a time (~5,400
 * of a hinted run's ~14,000 minor faults, `perf record -e minor-faults`); one allocation of their
 * sum is mapped in huge pages. A view keeps the whole buffer alive: the callers hold these files
 * for the whole run anyway.
 */
export function prefetchStamped(paths: string[]): Promise<Map<string, { buf: Buffer; stamp: FileStamp }>> {
  const got = new Map<string, { buf: Buffer; stamp: FileStamp }>()
  const opened: { path: string; fd: number; st: Stats }[] = []
  for (const path of paths) {
    let fd: number
    try {
      fd = openSync(path, 'r')
    } catch {
      continue
    }
    try {
      opened.push({ path, fd, st: fstatSync(fd) })
    } catch {
      closeSync(fd)
    }
  }
  // Each view starts on an 8-byte boundary: the tables are read as Float64Array/Uint32Array views
  // of their file's bytes (table-cache.ts), and a view after data.dsync's odd length was copied
  // whole to align it (9.6 MB at 200k files, on the main thread of every hinted run).
  const all = Buffer.allocUnsafe(opened.reduce((sum, f) => sum + align8(f.st.size), 0))
  let at = 0
  const reads = opened.map(({ path, fd, st }) => {
    const size = st.size
    const buf = all.subarray(at, at + size)
    at += align8(size)
    return new Promise<void>(resolve => read(fd, buf, 0, size, 0, (err, n) => {
      closeSync(fd)
      if (!err && n === size) got.set(path, { buf, stamp: stampOf(st) })
      resolve()
    }))
  })
  return Promise.all(reads).then(() => got)
}

/**
 * Whether `path` is still the file stamped: gendsync replaces its outputs by rename (a new
 * inode, and rename sets the ctime), never in place, so a file renamed over since it was read
 * differs here even if its inode number was reused.
 */
export function sameFile(path: string, stamp: FileStamp): boolean {
  let now: FileStamp
  try {
    now = stampOf(statSync(path))
  } catch {
    return false
  }
  return now.dev === stamp.dev && now.ino === stamp.ino && now.size === stamp.size && now.mtimeMs === stamp.mtimeMs && now.ctimeMs === stamp.ctimeMs
}

function stampOf(st: Stats): FileStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs }
}
