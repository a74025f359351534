import { closeSync, fstatSync, openSync, read } from 'node:fs'

/**
 * Files read on libuv's threads while the main thread does other work, each in one whole-file
 * read: no main-thread turn is needed between its start and its end (fs.readFile reads in
 * 512 KiB chunks, each started from the event loop, which a synchronous caller holds). Their
 * pages are first touched by those threads, not by the caller. A file that cannot be read
 * whole is left out: the caller reads it itself, and meets the error itself.
 */
export function prefetchFiles(paths: string[]): Promise<Map<string, Buffer>> {
  const got = new Map<string, Buffer>()
  const reads = paths.map(path => new Promise<void>(resolve => {
    let fd: number
    let size: number
    try {
      fd = openSync(path, 'r')
    } catch {
      return resolve()
    }
    try {
      size = fstatSync(fd).size
    } catch {
      closeSync(fd)
      return resolve()
    }
    const buf = Buffer.allocUnsafe(size)
    read(fd, buf, 0, size, 0, (err, n) => {
      closeSync(fd)
      if (!err && n === size) got.set(path, buf)
      resolve()
    })
  }))
  return Promise.all(reads).then(() => got)
}
