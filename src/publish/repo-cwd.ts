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
 * Node's and V8's diagnostic options write files into the working directory, some while the run is
 * in the repository (each worker's `--cpu-prof` profile at its exit, `--perf-basic-prof`'s isolate
 * logs: seen landing in the bench tree, where the next gendsync would publish them): under any of
 * them the run keeps absolute paths.
 *
 * `fn` gets the prefix: '' (relative) when the run is in the repository, else `save` + '/'.
 */
export async function inRepoDir<T>(save: string, ownsCwd: boolean, fn: (openBase: string) => Promise<T>): Promise<T> {
  const absolute = join(save, '/')
  if (!ownsCwd || !isAbsolute(save) || writesIntoCwd([...process.execArgv, process.env.NODE_OPTIONS ?? ''])) return fn(absolute)
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

/** Node and V8 options that write files into the working directory (profiles, logs, reports, heap snapshots). */
const WRITES_INTO_CWD = /--(?:cpu-prof|heap-prof|prof\b|perf-basic-prof|perf-prof|logfile|log\b|log-|report|diagnostic-dir|heapsnapshot|trace-event|redirect-warnings)/

/** Whether any of these command-line words (execArgv, NODE_OPTIONS) asks for files that go into the working directory. */
export function writesIntoCwd(words: string[]): boolean {
  return words.some(w => WRITES_INTO_CWD.test(w))
}
