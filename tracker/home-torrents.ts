import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadHome } from '../src/config/load.js'
import { repoFiles } from '../src/manifest/paths.js'

export interface HomeTorrent {
  repo: string
  file: string
  infoHash?: string
  /** Why the repo contributes no infohash (not generated yet, unreadable). */
  problem?: string
}

/**
 * The infohash of every published repo of a dsync home (`<save>/.dsync/<repo>.torrent`), so
 * a host can run a private tracker for exactly what it publishes.
 */
export function homeTorrents(homeFlag: string | undefined): HomeTorrent[] {
  const home = loadHome(homeFlag)
  return home.repos.filter(r => r.publish).map(repo => {
    const file = repoFiles(repo.save, repo.name).torrent
    try {
      return { repo: repo.name, file, infoHash: infoHashOf(readFileSync(file)) }
    } catch (err) {
      return { repo: repo.name, file, problem: (err as Error).message }
    }
  })
}

/** SHA-1 of the raw `info` value: found by skipping bencode, never decoding it whole. */
export function infoHashOf(torrent: Buffer): string {
  let pos = 0
  const skip = (depth: number): void => {
    if (depth > 64 || pos >= torrent.length) throw new Error('malformed torrent')
    const c = torrent[pos]
    if (c === 0x69) { // i...e
      const end = torrent.indexOf(0x65, pos)
      if (end < 0) throw new Error('malformed torrent')
      pos = end + 1
    } else if (c === 0x6c || c === 0x64) { // l...e, d...e
      pos++
      while (pos < torrent.length && torrent[pos] !== 0x65) skip(depth + 1)
      if (pos >= torrent.length) throw new Error('malformed torrent')
      pos++
    } else { // <len>:<bytes>
      const colon = torrent.indexOf(0x3a, pos)
      const len = Number(torrent.toString('latin1', pos, colon))
      if (colon < 0 || !Number.isSafeInteger(len) || colon + 1 + len > torrent.length) throw new Error('malformed torrent')
      pos = colon + 1 + len
    }
  }
  if (torrent[0] !== 0x64) throw new Error('malformed torrent')
  pos = 1
  while (pos < torrent.length && torrent[pos] !== 0x65) {
    const keyStart = pos
    skip(1)
    const key = torrent.toString('latin1', torrent.indexOf(0x3a, keyStart) + 1, pos)
    const valueStart = pos
    skip(1)
    if (key === 'info') return createHash('sha1').update(torrent.subarray(valueStart, pos)).digest('hex')
  }
  throw new Error('torrent has no info dictionary')
}
