import { closeSync, openSync, readFileSync, readSync } from 'node:fs'

/** A file's bytes, or undefined when it cannot be read (absent, or not a file). */
export function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}

/**
 * `file`'s bytes from its start into `buf`, until the file ends or `buf` is full, as a view of
 * `buf`: a caller reading many files one after the other reuses one buffer. Throws as fs does.
 */
export function readFileInto(file: string, buf: Buffer): Buffer {
  const fd = openSync(file, 'r')
  try {
    let got = 0
    for (let n = -1; n !== 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, got)
    return buf.subarray(0, got)
  } finally {
    closeSync(fd)
  }
}
