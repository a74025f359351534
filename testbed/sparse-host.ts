import assert from 'node:assert/strict'
import { readFileSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { layoutOf } from '../src/sync/torrent-check.js'
import { fileSpans, pieceMap, type PieceSpan } from '../src/torrent/piece-map.js'
import { readTorrentInfo, type TorrentInfo } from '../src/torrent/read.js'
import { prepareHost, startHost, type TestHost } from './host.js'

/** A real `dsync service` at `address` serving repository rocky: one sparse file pool/zero.img of `bytes` zeros. */
export async function sparseHost(address: string, bytes: number): Promise<{ h: TestHost; info: TorrentInfo; pieces: PieceSpan[] }> {
  const h = await prepareHost(address, { rocky: { 'pool/zero.img': '' } })
  truncateSync(join(h.webroot, 'rocky', 'pool', 'zero.img'), bytes)
  const g = await h.cli('--json', 'gendsync')
  assert.equal(g.code, 0, g.stderr)
  await startHost(h, ['rocky'])
  const info = readTorrentInfo(readFileSync(join(h.webroot, 'rocky', '.dsync', 'rocky.torrent')))
  const map = pieceMap(layoutOf(info), info.pieceLength)
  return { h, info, pieces: fileSpans(map, map.files.findIndex(f => f.path.endsWith('zero.img'))) }
}
