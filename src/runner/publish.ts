import type { Home } from '../config/load.js'
import type { RepoConfig } from '../config/repo-config.js'
import { DsyncError } from '../errors.js'

/**
 * A repository that is also published (dsync=true) is regenerated after a successful sync,
 * and a running DTP service is told to reload it: upstream -> this host -> the swarm in one
 * scheduled run. No service running is not an error (the next `dsync -service` reads it).
 */
export async function republish(home: Home, repo: RepoConfig, log: (line: string) => void): Promise<void> {
  const { generateRepo } = await import('../publish/generate.js')
  const r = await generateRepo({ name: repo.name, save: repo.save, trackers: repo.trackers ?? home.main.trackers, onWarning: log })
  log(r.changed
    ? `gendsync: ${r.files} files, ${r.hashedFiles} hashed, infohash ${r.infoHash} (${r.seconds.toFixed(1)} s)`
    : `gendsync: unchanged, infohash ${r.infoHash}`)
  const { controlRequest, runningPid } = await import('../host/daemon.js')
  if (runningPid(home.paths.home) === undefined) {
    log('service: not running; it serves the new generation when started')
    return
  }
  try {
    const answer = await controlRequest<{ ok: boolean; message: string }>(home.paths.home, 'reload')
    log(`service reload: ${answer.ok ? 'ok' : 'failed'}: ${answer.message}`)
  } catch (err) {
    log(`service reload failed: ${err instanceof DsyncError ? err.message : String(err)}`)
  }
}
