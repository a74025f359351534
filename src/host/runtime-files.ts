import { join } from 'node:path'

/** Where the running service keeps its pid, control socket and log, under the home. */
export interface RuntimeFiles {
  dir: string
  pid: string
  socket: string
  log: string
}

export function runtimeFiles(home: string): RuntimeFiles {
  const dir = join(home, 'run')
  return { dir, pid: join(dir, 'dtp.pid'), socket: join(dir, 'dtp.sock'), log: join(home, 'log', 'dtp.log') }
}
