import { closeSync, openSync, readSync } from 'node:fs'
import { pathKeyAt, type LineTable } from '../manifest/manifest-lines.js'
import type { AppliedToFile } from '../generation/delta-apply.js'

/**
 * A data.dsync as the delta plan reads it: a few lines, found by path. In memory (its bytes
 * and a line table) or on disk (the list the deltas were applied into: only its line offsets
 * are held, 4 bytes a line, and a line is read when a path is looked up; at 1M files the
 * plan's few hundred look-ups read ~20 lines each).
 */
export interface ListLines {
  /** Entry lines. */
  count: number
  /** The header's text (magic line to the blank line). */
  header: string
  /** Entry line i's bytes, its newline included. */
  line(i: number): Buffer
  /** The entry lines that are hardlinks ('h'), by number. */
  hardlinks(): number[]
}

export function tableLines(t: LineTable): ListLines {
  return {
    count: t.count,
    header: t.buf.toString('latin1', 0, t.bodyAt + 2),
    line: i => t.buf.subarray(t.starts[i], t.starts[i + 1]),
    hardlinks: () => {
      const out: number[] = []
      for (let i = 0; i < t.count; i++) if (t.buf[t.starts[i]] === 0x68) out.push(i)
      return out
    },
  }
}

/** The list applyDeltasToFile wrote, read a line at a time (one open file, closed with `close`). */
export function fileLines(a: AppliedToFile): ListLines & { close(): void } {
  let fd: number | undefined
  return {
    count: a.count,
    header: a.header,
    line: i => {
      fd ??= openSync(a.file, 'r')
      const buf = Buffer.allocUnsafe(a.starts[i + 1] - a.starts[i])
      if (readSync(fd, buf, 0, buf.length, a.starts[i]) !== buf.length) throw new Error(`${a.file}: cut short`)
      return buf
    },
    hardlinks: () => a.hardlinks,
    close: () => {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  }
}

/** Line i's path as UTF-8 bytes (unescaped). */
export function keyAt(l: ListLines, i: number): Buffer {
  const line = l.line(i)
  return pathKeyAt({ buf: line, starts: Uint32Array.of(0, line.length), count: 1 }, 0)
}

/** First line whose path is not below `key` (data.dsync's order). */
export function lowerBoundIn(l: ListLines, key: Buffer): number {
  let lo = 0
  let hi = l.count
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (Buffer.compare(keyAt(l, mid), key) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** A count from the header ("piece-length", "entries", ...). */
export function headerValue(l: ListLines, name: string): number {
  return Number(new RegExp(`\\n${name} (\\d+)\\n`).exec(l.header)?.[1] ?? 0)
}
