import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Moves `dir` (a measured DEST) into `trash` at once, to be removed when the benchmark is done
 * (removeInBackground). Deleting a 1M-file DEST took ~8 minutes on this machine's disk, inside
 * the benchmark and so under the bench lock; deleting it during the next measurement instead
 * would charge that one (ext4 skips recently freed inodes one by one when it allocates: bench
 * sync saw 2.4 s of 12 s in mkdir beside such an rm). Same filesystem: a rename.
 */
export function moveToTrash(dir: string, trash: string): void {
  if (!existsSync(dir)) return
  mkdirSync(trash, { recursive: true })
  renameSync(dir, join(trash, `${Date.now()}-${Math.random().toString(36).slice(2)}`))
}

/**
 * Removes a folder of set-aside trees without waiting for it: renamed away at once, then
 * deleted by a detached, niced `rm -rf` that outlives the benchmark. Deleting two 200,000-file
 * trees took over 20 minutes on this machine's disk, all of it inside the flock'd benchmark
 * process, holding the bench lock from everyone else. A killed benchmark's leftovers
 * (`trash-*`) are handed to the same removal on the next run. Removals of one parent take
 * turns (flock on a file beside the trees): leftovers an earlier run's rm is still deleting
 * were handed to a second rm at once, and up to three rm processes worked on one 1M-file tree
 * for over an hour, every one of them beside the next timed runs (session 18).
 */
export function removeInBackground(dir: string): void {
  const parent = join(dir, '..')
  if (!existsSync(parent)) return
  if (existsSync(dir)) renameSync(dir, join(parent, `trash-${Date.now()}-${process.pid}`))
  const leftovers = readdirSync(parent).filter(n => n.startsWith('trash-')).map(n => join(parent, n))
  if (leftovers.length === 0) return
  const rm = spawn('flock', [join(parent, '.trash-rm.lock'), 'nice', '-n', '19', 'ionice', '-c', '3', 'rm', '-rf', '--', ...leftovers], { detached: true, stdio: 'ignore' })
  rm.on('error', () => undefined) // no flock/nice/ionice: the trees stay for the next run's attempt
  rm.unref()
}
