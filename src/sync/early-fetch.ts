import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { DSYNC_DIR } from '../manifest/paths.js'
import { Downloader } from '../swarm/downloader.js'
import { traceMark } from '../swarm/trace.js'
import type { PeerConnection } from '../swarm/peer.js'
import type { Swarm } from '../swarm/swarm.js'
import { fileSpans, type PieceMap, type PieceSpan } from '../torrent/piece-map.js'
import { warnOnHashFail } from './transfer.js'

/**
 * Bytes an early fetch holds at most. Between data.dsync's last piece and the transfer's first
 * request a bootstrap parses the list, plans, parks data.dsync and starts the stage workers:
 * 0.48 s of idle links on `bench swarm` many (20,000 files: ~48 MB at the 800 Mbit/s of caps).
 */
export const EARLY_HOLD_BYTES = 64 << 20

/** A repository smaller than this (after data.dsync) is not fetched early: a small pull starts no threads (stage-inline.ts). */
export const EARLY_MIN_BYTES = 64 << 20

/**
 * An early fetch: a bootstrap's pieces asked for from the moment data.dsync is checked, while
 * the list is parsed and the plan built (a bootstrap into an empty DEST fetches every file).
 * The pieces are verified by the torrent's SHA-1 as usual and held in memory; nothing is
 * written until the transfer adopts the downloader with the plan's pieces (the rest are
 * dropped), so the plan's refusals (hostile list, delete guard, free space) still come before
 * any write, and a run killed before its transfer leaves DEST as it was. The same connections
 * carry it: the transfer's downloader is this one.
 */
export interface EarlyFetch {
  downloader: Downloader
  /** Stops feeding it new peers: the transfer attaches its own as it adopts it. */
  detach: () => void
  /** Ends it and drops what it holds (the run ended before its transfer, or failed). */
  stop: () => void
}

/**
 * Starts an early fetch when it is switched on (DSYNC_EARLY_FETCH=1) and the run is a bootstrap
 * of a single torrent: DEST holds nothing but .dsync/ (no data.dsync to plan against, no files
 * to copy locally) and the repository's files, after data.dsync, are at least EARLY_MIN_BYTES.
 * Else undefined.
 *
 * Off by default: on `bench swarm` (4 hosts and the client on 2 cores, loaded by other work) the
 * pulls with it were slower in 3 pairs of 3 (1.10-1.33x): the blocks it receives, verifies and
 * holds take the cores the list's parse, the plan and the transfer set-up need (in one pair
 * 0.86 s from data.dsync to the plan's end against 0.26 s without it) for ~20 MB of link time
 * (docs/ARCHITECTURE.md, "Swarm, session 10").
 */
export function startEarlyFetch(dest: string, swarm: Swarm, map: PieceMap, hashes: Buffer, onWarning?: (message: string) => void, env: NodeJS.ProcessEnv = process.env): EarlyFetch | undefined {
  if (env.DSYNC_EARLY_FETCH !== '1' || !emptyDest(dest)) return undefined
  const pieces: PieceSpan[] = []
  let bytes = 0
  for (let i = 1; i < map.files.length; i++) {
    for (const span of fileSpans(map, i)) {
      pieces.push(span)
      bytes += span.dataLength
    }
  }
  if (bytes < EARLY_MIN_BYTES) return undefined
  traceMark('early-fetch')
  const downloader = new Downloader({ pieces, hashes, holdBytes: EARLY_HOLD_BYTES, onPiece: () => {} })
  warnOnHashFail(downloader, onWarning)
  const onPeer = (peer: PeerConnection) => {
    // Sent at once: the list's parse that follows holds the event loop (cork.ts's turn) for 0.15 s or more.
    peer.ready().then(() => { downloader.addPeer(peer); peer.flush() }, (err: Error) => peer.close(err.message))
  }
  swarm.on('peer', onPeer)
  for (const peer of swarm.connected) onPeer(peer)
  const detach = () => { swarm.off('peer', onPeer) }
  return { downloader, detach, stop: () => { detach(); downloader.stop() } }
}

/**
 * Nothing in DEST but .dsync/, and nothing staged: a bootstrap killed late leaves DEST with only
 * .dsync/ and its verified files in staging, which the run is not to fetch again.
 */
function emptyDest(dest: string): boolean {
  try {
    if (!readdirSync(dest).every(name => name === DSYNC_DIR)) return false
  } catch {
    return true // not made yet
  }
  const staging = join(dest, DSYNC_DIR, 'staging')
  try {
    return readdirSync(staging, { withFileTypes: true }).every(d => d.isDirectory() && readdirSync(join(staging, d.name)).length === 0)
  } catch {
    return true // no staging folder
  }
}
