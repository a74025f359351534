import { readFileSync } from 'node:fs'
import { loadHome } from '../src/config/load.js'
import { repoFiles } from '../src/manifest/paths.js'
import { readTorrentInfo } from '../src/torrent/read.js'

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
      return { repo: repo.name, file, infoHash: readTorrentInfo(readFileSync(file)).infoHash }
    } catch (err) {
      return { repo: repo.name, file, problem: (err as Error).message }
    }
  })
}
