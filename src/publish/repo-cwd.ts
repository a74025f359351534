import { isAbsolute, join } from 'node:path'

/**
 * The prefix a full gendsync's worker threads put before a repository path to open or lstat it.
 * The kernel walks every component of a path at each open and lstat, and a full run makes two of
 * them per file (the walk's lstat, the hash's open): at 200,000 files under an 11-component
 * absolute path that walk was ~1 s of the workers' CPU (docs/SCALE.md, session 24). Relative to
 * the repository the same files are 5 components away: a loop of lstat + open + fstat + read +
 * close over the bench tree's 200,000 files took 3.15 s of CPU against 3.85 s with absolute paths
 * (session 25). Node has no openat, so "relative to the repository" means the process's working
 * directory: only a caller that owns it for the run may ask (`ownsCwd`: the CLI's gendsync, not
 * the service, whose other work may resolve relative paths meanwhile). The main thread keeps the
 * absolute paths for every message; the working directory is put back after the run.
 *
 * `fn` gets the prefix: '' (relative) when the run is in the repository, else `save` + '/'.
 */
export async function inRepoDir<T>(save: string, ownsCwd: boolean, fn: (openBase: string) => Promise<T>): Promise<T> {
  const absolute = join(save, '/')
  if (!ownsCwd || !isAbsolute(save)) return fn(absolute)
  let before: string
  try {
    before = process.cwd()
    process.chdir(save)
  } catch {
    // No working directory to come back to, or the repository cannot be entered: absolute paths.
    return fn(absolute)
  }
  try {
    return await fn('')
  } finally {
    try {
      process.chdir(before)
    } catch {
      // The directory we came from went away meanwhile: nothing later in this process uses it.
    }
  }
}
