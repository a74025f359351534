import { spawn, type ChildProcess } from 'node:child_process'
import { CLI } from './cli.js'
import type { PullRun } from './upstream.js'

export interface ProgressEvent {
  event: string
  phase?: 'metadata' | 'manifest' | 'files'
  bytesDone: number
  bytesTotal: number
  [key: string]: unknown
}

export interface WatchOptions {
  /** Every JSON line as it arrives (progress events, then the summary), with the child. */
  onEvent?: (e: ProgressEvent, child: ChildProcess) => void
  /** The child, once spawned (to kill it on an outside event). */
  onChild?: (child: ChildProcess) => void
  extra?: string[]
  env?: Record<string, string>
}

/**
 * `dsync --json pull` as a child the test can watch and kill: a test can SIGKILL it, or act
 * on a host, at a point it knows the transfer has reached.
 */
export function pullWatched(source: string, dest: string, peers: string[], opts: WatchOptions): Promise<PullRun & { signal: NodeJS.Signals | null }> {
  const { onEvent, extra = [], env = {} } = opts
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--json', 'pull', ...peers.flatMap(p => ['--peer', p]), ...extra, source, dest], {
      env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: '', DSYNC_LANG: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let partial = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      partial += d
      const lines = partial.split('\n')
      partial = lines.pop()!
      for (const l of lines) {
        if (!l.startsWith('{')) continue
        onEvent?.(JSON.parse(l) as ProgressEvent, child)
      }
    })
    opts.onChild?.(child)
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const line = stdout.trim().split('\n').reverse().find(l => l.includes('"event":"summary"'))
      resolve({ code: code ?? -1, signal, stdout, stderr, summary: line ? JSON.parse(line) : undefined })
    })
  })
}
