import { isRepoName } from '../config/repo-config.js'
import { DsyncError, ExitCode } from '../errors.js'
import { isSafeRelativePath } from '../manifest/entry.js'
import { MANIFEST_TORRENT_PATH } from '../manifest/paths.js'
import { MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, type LayoutFile } from '../torrent/layout.js'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'

/** Largest data.dsync accepted: ~3 million entries; a bigger one is refused, not allocated. */
const MANIFEST_CAP = 512 << 20

/** A 200k-file torrent takes a noticeable time to read; a source's torrent is read once. */
const parsedTorrents = new WeakMap<Buffer, TorrentInfo>()

/** Reads a repository torrent and refuses one that is not a safe dsync torrent (before anything is written). */
export function parseTorrent(torrent: Buffer, from: string, expectHash?: string): TorrentInfo {
  let info = parsedTorrents.get(torrent)
  if (!info) {
    try {
      info = readTorrentInfo(torrent)
    } catch (err) {
      throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: (err as Error).message })
    }
  }
  if (expectHash && info.infoHash !== expectHash) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `infohash ${info.infoHash}, expected ${expectHash}` })
  }
  if (info.files[0]?.path !== MANIFEST_TORRENT_PATH || info.files[0].pad) {
    throw new DsyncError(ExitCode.badData, 'sync.notDsyncTorrent', { from, reason: `its first file is not ${MANIFEST_TORRENT_PATH}` })
  }
  // Nothing is ever written at a torrent path (only at data.dsync's, which are checked
  // too), but a torrent naming one is hostile or broken: refuse it before anything else.
  const unsafe = info.files.find(f => !f.pad && !isSafeRelativePath(f.path))
  if (unsafe) throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `unsafe path "${unsafe.path}"` })
  // The name becomes file names under DEST/.dsync/ (NAME.torrent): the repo-name rule applies.
  if (!isRepoName(info.name)) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `unsafe name "${info.name}"` })
  }
  if (info.files[0].length > MANIFEST_CAP) {
    throw new DsyncError(ExitCode.badData, 'sync.tooLarge', { what: 'data.dsync', from, cap: MANIFEST_CAP })
  }
  if (info.pieceLength < MIN_PIECE_LENGTH || info.pieceLength > MAX_PIECE_LENGTH || (info.pieceLength & (info.pieceLength - 1)) !== 0) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `piece length ${info.pieceLength}` })
  }
  parsedTorrents.set(torrent, info)
  return info
}

/** The torrent's files with their offsets in the piece space. */
export function layoutOf(info: TorrentInfo): LayoutFile[] {
  let offset = 0
  return info.files.map(f => {
    const out = { path: f.path, length: f.length, pad: f.pad, offset }
    offset += f.length
    return out
  })
}
