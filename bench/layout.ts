import { readFileSync } from 'node:fs'
import { parseManifest } from '../src/manifest/format.js'
import { layoutFiles, pieceLengthFor } from '../src/torrent/layout.js'
import { formatBytes } from '../src/ui/units.js'

/**
 * What a 1% change costs a client under different piece layouts: bytes it must fetch to
 * get the changed files, and the torrent's metadata size. Sizes come from a real
 * data.dsync (`--manifest FILE`) or a synthetic mirror-like distribution.
 *   npm run bench -- layout [--manifest PATH/.dsync/data.dsync] [--seed N]
 */
export async function run(args: string[]): Promise<void> {
  const manifestArg = args.indexOf('--manifest')
  const sizes = manifestArg >= 0 ? sizesFrom(args[manifestArg + 1]) : syntheticSizes(20_000)
  let seed = Number(args[args.indexOf('--seed') + 1]) || 42
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const changed = new Set<number>()
  while (changed.size < Math.max(1, Math.round(sizes.length / 100))) changed.add(Math.floor(rand() * sizes.length))
  const changedBytes = [...changed].reduce((s, i) => s + sizes[i], 0)
  const total = sizes.reduce((s, x) => s + x, 0)
  const P = pieceLengthFor(total)

  const rows: string[][] = []
  rows.push(row('aligned, pad-aware client (dsync, libtorrent)', P, alignedCost(sizes, changed, 0), P, sizes, true, changedBytes))
  rows.push(row('aligned, client fetching pad bytes (webtorrent)', P, alignedCost(sizes, changed, P), P, sizes, true, changedBytes))
  for (const unP of [P, 256 << 10, 1 << 20]) {
    rows.push(row(`unaligned, ${formatBytes(unP)} pieces`, unP, unalignedCost(sizes, changed, unP), unP, sizes, false, changedBytes))
  }
  console.log(`files ${sizes.length}, total ${formatBytes(total)}, changed ${changed.size} files = ${formatBytes(changedBytes)}; dsync piece length ${formatBytes(P)}\n`)
  console.log('| layout | piece | bytes fetched | fetched / changed | pieces | pad files | info dict (est.) |')
  console.log('|---|---|---|---|---|---|---|')
  for (const r of rows) console.log(`| ${r.join(' | ')} |`)
}

function row(name: string, P: number, fetched: number, pieceLength: number, sizes: number[], aligned: boolean, changedBytes: number): string[] {
  const files = aligned ? layoutFiles(sizes.map((s, i) => ({ path: `f${i}`, length: s })), pieceLength) : sizes.map(s => ({ length: s, pad: false }))
  const contentBytes = files.reduce((s, f) => s + f.length, 0)
  const pieces = Math.ceil(contentBytes / pieceLength)
  const pads = files.filter(f => f.pad).length
  // ~60 bytes per file entry (path of a typical pool/ file), ~30 per pad entry, 20 per piece.
  const info = (files.length - pads) * 60 + pads * 30 + pieces * 20
  return [name, formatBytes(P), formatBytes(fetched), (fetched / changedBytes).toFixed(2), String(pieces), String(pads), formatBytes(info)]
}

/**
 * Aligned: each changed file's own pieces. A pad-aware client (P = 0 here) never fetches pad
 * bytes, known zeros; one that is not fetches each file's last piece whole.
 */
function alignedCost(sizes: number[], changed: Set<number>, P: number): number {
  let bytes = 0
  for (const i of changed) bytes += P === 0 ? sizes[i] : Math.ceil(sizes[i] / P) * P
  return bytes
}

/** Unaligned: every piece a changed file touches, whole, neighbours' bytes included. */
function unalignedCost(sizes: number[], changed: Set<number>, P: number): number {
  const wanted = new Set<number>()
  let offset = 0
  sizes.forEach((s, i) => {
    if (changed.has(i) && s > 0) {
      for (let p = Math.floor(offset / P); p <= Math.floor((offset + s - 1) / P); p++) wanted.add(p)
    }
    offset += s
  })
  return wanted.size * P
}

function sizesFrom(file: string): number[] {
  return parseManifest(readFileSync(file), file).entries.filter(e => e.type === 'f' && e.size > 0).map(e => e.size)
}

/** Mostly tens of KB, a tail of MB-sized files: about 1 GB over 20k files. */
function syntheticSizes(n: number): number[] {
  let seed = 7
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  return Array.from({ length: n }, () => {
    const r = rand()
    return r < 0.97 ? Math.floor(1000 + rand() * 60_000) : Math.floor(200_000 + rand() * 1_000_000)
  })
}
