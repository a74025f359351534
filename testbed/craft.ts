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
