/**
 * A command whose work is over (what it opened is closed, its lock released, its output
 * written) may end the process at once instead of letting Node tear it down: after the event
 * loop empties, Node disposes of the V8 heap object by object, joins its threads and frees
 * the rest, ~90 ms between a `pull`'s exit event and its parent seeing it end (bench swarm,
 * both datasets, session 25), time a user (and the bench's wall clock) waits for nothing.
 * `process.exit` skips the heap's disposal; the kernel frees the memory either way.
 */
let asked = false

/** Called by a command once everything it started has ended. */
export function exitAtOnceWhenDone(): void {
  asked = true
}

/**
 * Sets the exit code; ends the process now if the command asked for it and nothing is
 * waiting to be written (stdout or stderr as an asynchronous pipe elsewhere than Linux),
 * else leaves the end to Node, as before.
 */
export function endProcess(code: number): void {
  process.exitCode = code
  if (!asked || process.stdout.writableLength > 0 || process.stderr.writableLength > 0) return
  process.exit(code)
}
