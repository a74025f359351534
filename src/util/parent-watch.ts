import { Socket } from 'node:net'

/** The variable naming the pipe a launcher (cli/launch.ts) holds open for as long as it lives. */
export const PARENT_FD_VARIABLE = 'DSYNC_PARENT_FD'

/**
 * A command run in a child of the launcher ends when the launcher does, however it ended:
 * a SIGKILL of the launcher (what a user, a supervisor or a test sends to the pid it started)
 * closes the pipe, and this process then kills itself the same way, so nothing goes on
 * writing behind a command its caller saw die. The variable is taken out of the environment
 * so that processes this one starts do not watch a descriptor that is not theirs.
 */
export function exitWithParent(): void {
  const fd = Number(process.env[PARENT_FD_VARIABLE])
  delete process.env[PARENT_FD_VARIABLE]
  if (!Number.isInteger(fd) || fd < 3) return
  const pipe = new Socket({ fd, readable: true, writable: false })
  pipe.on('error', () => process.kill(process.pid, 'SIGKILL'))
  pipe.on('close', () => process.kill(process.pid, 'SIGKILL'))
  pipe.resume()
  pipe.unref() // the watch alone keeps no command alive
}
