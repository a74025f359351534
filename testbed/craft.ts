import bencode from 'bencode'
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { hashBuffer } from '../src/manifest/hash-file.js'
import { buildTorrent } from '../src/torrent/build.js'
import { layoutFiles } from '../src/torrent/layout.js'

/**
 * Writes a repository whose data.dsync is exactly `entryLines` (with a correct header and
 * END checksum unless `header`/`checksum` override them) and a torrent laid out for
 * `torrentFiles`: what a hostile or broken upstream would publish. Returns the torrent path.
 */
export function craftRepo(root: string, name: string, opts: {
  entryLines: string[]
  torrentFiles: Record<string, Buffer>
  header?: Record<string, number>
  badChecksum?: boolean
  pieceLength?: number
}): string {
  const pieceLength = opts.pieceLength ?? 16384
  const counts = { entries: opts.entryLines.length, files: 0, bytes: 0 }
  for (const l of opts.entryLines) {
    const f = l.split('\t')
    if (f[0] === 'f') {
      counts.files++
      counts.bytes += Number(f[2])
    }
  }
  const h = { 'piece-length': pieceLength, ...counts, ...opts.header }
  const body = ['DSYNC-MANIFEST 1', ...Object.entries(h).map(([k, v]) => `${k} ${v}`), '', ...opts.entryLines].join('\n') + '\n'
  const sum = opts.badChecksum ? '0'.repeat(64) : createHash('sha256').update(body).digest('hex')
  const manifest = Buffer.from(body + `END\t${sum}\n`)
  const save = join(root, name)
  const files: [string, Buffer][] = [['.dsync/data.dsync', manifest], ...Object.entries(opts.torrentFiles)]
  for (const [rel, data] of files) {
    mkdirSync(dirname(join(save, rel)), { recursive: true })
    writeFileSync(join(save, rel), data)
  }
  const digests = files.map(([, data]) => hashBuffer(data, pieceLength))
  const pieces = Buffer.concat(digests.map(d => d.pieces))
  const last = digests[digests.length - 1]
  if (last.tail) last.tail.copy(pieces, pieces.length - 20)
  const layout = layoutFiles(files.map(([path, data]) => ({ path, length: data.length })), pieceLength)
  const { torrent } = buildTorrent({ name, pieceLength, files: layout, pieces, trackers: [] })
  const out = join(root, `${name}.torrent`)
  writeFileSync(out, torrent)
  return out
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A bencoded info dict with these files (piece hashes are zeros: refused before any piece). */
export function rawInfo(files: { path: string[]; length: number }[], extra: Record<string, unknown> = {}): Buffer {
  const total = files.reduce((s, f) => s + f.length, 0)
  return Buffer.from(bencode.encode({ files, name: 'evil', 'piece length': 16384, pieces: Buffer.alloc(Math.ceil(total / 16384) * 20), ...extra }))
}

/** A .torrent holding exactly these info-dict bytes (its infohash is their SHA-1). */
export function torrentOf(info: Buffer): Buffer {
  return Buffer.concat([Buffer.from('d4:info'), info, Buffer.from('e')])
}

const manifestFile = { path: ['.dsync', 'data.dsync'], length: 100 }

/**
 * Hostile or broken info dicts, each with the reason it must be refused for: the same
 * refusals apply however the torrent arrives (a file, HTTP from a dtp:// host, BEP 9).
 */
export const hostileInfos: [string, () => Buffer, RegExp][] = [
  ['a path with ..', () => rawInfo([manifestFile, { path: ['..', 'evil'], length: 5 }]), /unsafe path/],
  ['an absolute path', () => rawInfo([manifestFile, { path: ['', 'etc', 'passwd'], length: 5 }]), /unsafe path/],
  ['a NUL in a path', () => rawInfo([manifestFile, { path: ['a\0b'], length: 5 }]), /unsafe path/],
  ['not a dsync torrent (no data.dsync first)', () => rawInfo([{ path: ['movie.mkv'], length: 100 }]), /not a dsync repository/],
  ['deeply nested bencode', () => Buffer.from('l'.repeat(100_000) + 'e'.repeat(100_000)), /nesting too deep/],
  ['a piece length that is no power of two', () => rawInfo([manifestFile], { 'piece length': 1000 }), /piece length/],
  ['a piece length over 16 MiB', () => rawInfo([manifestFile], { 'piece length': 1 << 26, pieces: Buffer.alloc(20) }), /piece length/],
  ['a name that climbs out of DEST', () => rawInfo([manifestFile], { name: '../../../pwn' }), /unsafe name/],
  ['a data.dsync over the 512 MiB cap', () => rawInfo([{ path: ['.dsync', 'data.dsync'], length: 600 << 20 }], { 'piece length': 1 << 20 }), /data\.dsync .* larger than the cap/],
]
