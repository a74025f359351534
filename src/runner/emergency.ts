import { mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { EMOFF_GRACE_MS } from '../config/defaults.js'
import type { Home } from '../config/load.js'
import type { RepoConfig } from '../config/repo-config.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { liveOwner, ownPidLine, type ProcessId, sameProcessAlive } from '../util/process.js'
import { logTime } from './clock.js'
import { writeRepoStatus } from './status-dir.js'

/**
 * DSYNC's emergency stop (`dsync -emoff`): every running sync of this home stops; each
 * stopped repository gets a marker file in its folder, which the next run removes. The
 * marker is a dot-file so that mirror users browsing the tree do not see it.
 */
export const EMOFF_MARKER = '.dsync-emoff'

export function markerPath(repo: Pick<RepoConfig, 'save'>): string {
  return join(repo.save, EMOFF_MARKER)
}

/** Removes a previous emergency stop's marker; true when there was one. */
export function clearMarker(repo: Pick<RepoConfig, 'save'>): boolean {
  try {
    unlinkSync(markerPath(repo))
    return true
  } catch {
    return false
  }
}

function runDir(home: string): string {
  return join(home, 'run')
}

/** Records this runner process so that `-emoff` finds it even between two repositories. */
export function registerRunner(home: string): () => void {
  const file = join(runDir(home), `runner-${process.pid}.pid`)
  mkdirSync(runDir(home), { recursive: true })
  writeFileSync(file, ownPidLine())
  return () => rmSync(file, { force: true })
}

export interface Stopped {
  repo?: string
  pid: number
  /** 'stopped': it ended within the grace time; 'killed': it had to be killed. */
  how: 'stopped' | 'killed'
}

/**
 * Stops every sync of this home: repositories whose lock names a live process get the
 * marker, the processes (runners and `dsync -sync`) get SIGTERM and finish cleanly (their
 * trees stay whole: new files wait in staging or in rsync's temporary files), and any still
 * alive after the grace time get SIGKILL, which the sync's ordering also survives.
 */
export async function emergencyStop(home: Home, graceMs = EMOFF_GRACE_MS): Promise<Stopped[]> {
  // Keyed by pid, holding the start time too: a process that ends during the grace time and
  // whose pid is reused at once must not get the SIGKILL meant for it.
  const byPid = new Map<number, { id: ProcessId; repos: string[] }>()
  const stoppedRepos: RepoConfig[] = []
  for (const repo of home.repos) {
    const id = liveOwner(join(repo.save, DSYNC_DIR, 'lock'))
    if (id === undefined || id.pid === process.pid) continue
    writeFileSync(markerPath(repo), `dsync -emoff at ${logTime()}: the sync of ${repo.name} by pid ${id.pid} was stopped.\n` +
      'The next dsync run removes this file.\n')
    byPid.set(id.pid, { id, repos: [...(byPid.get(id.pid)?.repos ?? []), repo.name] })
    stoppedRepos.push(repo)
  }
  for (const id of runnerIds(home.paths.home)) if (!byPid.has(id.pid)) byPid.set(id.pid, { id, repos: [] })
  const alive = () => [...byPid.values()].filter(p => sameProcessAlive(p.id))
  for (const p of alive()) signal(p.id.pid, 'SIGTERM')
  const deadline = Date.now() + graceMs
  while (alive().length > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
  const out: Stopped[] = []
  for (const { id, repos } of byPid.values()) {
    const how = sameProcessAlive(id) ? 'killed' : 'stopped'
    if (how === 'killed') signal(id.pid, 'SIGKILL')
    if (repos.length === 0) out.push({ pid: id.pid, how })
    for (const repo of repos) out.push({ repo, pid: id.pid, how })
  }
  // A killed process could not say so itself: its repos read "failed", not "running".
  for (const repo of stoppedRepos) writeRepoStatus(home.main.runner.statusDir, repo, '0')
  return out
}

function runnerIds(home: string): ProcessId[] {
  let names: string[]
  try {
    names = readdirSync(runDir(home))
  } catch {
    return []
  }
  const out: ProcessId[] = []
  for (const n of names) {
    const m = /^runner-(\d+)\.pid$/.exec(n)
    if (!m || Number(m[1]) === process.pid) continue
    const id = liveOwner(join(runDir(home), n))
    if (id !== undefined && id.pid === Number(m[1])) out.push(id)
    else rmSync(join(runDir(home), n), { force: true }) // stale: gone, or its pid reused
  }
  return out
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}
