import { statSync } from 'node:fs'
import { relative } from 'node:path'
import type { Home } from '../config/load.js'
import type { RepoConfig } from '../config/repo-config.js'
import { generationFiles } from '../generation/files.js'
import { repoFiles } from '../manifest/paths.js'

/**
 * The repositories a host serves: published (dsync=true) and named in dtp/list.conf by their
 * folder relative to webroot, as DSYNC's list.conf names them (`/rocky`).
 */
export function servedRepos(home: Pick<Home, 'main' | 'repos'>, listed: string[]): RepoConfig[] {
  const wanted = new Set(listed)
  return home.repos.filter(r => r.publish && wanted.has(repoFolder(home, r.save)))
}

/** A repository folder as list.conf names it: relative to webroot, no leading slash. */
export function repoFolder(home: Pick<Home, 'main'>, save: string): string {
  return relative(home.main.webroot, save).split('\\').join('/')
}

/** Cheap identity of a repo's data.dsync on disk, so a reload re-reads only changed ones. */
export function manifestStamp(repo: RepoConfig): string {
  const files = repoFiles(repo.save, repo.name)
  try {
    const m = statSync(files.manifest)
    const t = statSync(files.torrent)
    return `${m.ino}:${m.size}:${m.mtimeMs}/${t.ino}:${t.size}:${t.mtimeMs}/${recordStamp(repo.save)}`
  } catch {
    return 'missing'
  }
}

/** The signed record is written after data.dsync and the torrent, and may change alone. */
function recordStamp(save: string): string {
  try {
    const r = statSync(generationFiles(save).record)
    return `${r.ino}:${r.size}:${r.mtimeMs}`
  } catch {
    return '-'
  }
}
