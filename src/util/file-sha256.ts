import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'

/** SHA-256 (hex) of a file read in 1 MiB chunks (never held whole), or undefined when it cannot be read. */
export function fileSha256(path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    const hash = createHash('sha256')
    const chunk = Buffer.allocUnsafe(1 << 20)
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n))
    return hash.digest('hex')
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}
