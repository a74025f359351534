import { spawn, type ChildProcess } from 'node:child_process'
import { DsyncError, ExitCode } from '../errors.js'

/** The rsync binary: a runtime dependency of the first hop. DSYNC_RSYNC names another one. */
export function rsyncBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.DSYNC_RSYNC || 'rsync'
}

export interface RsyncRun {
  code: number
  /** "Total bytes received" from --stats, 0 when rsync printed none. */
  bytesReceived: number
  /** The last lines rsync wrote to stderr, for the error message. */
  errorTail: string
}

/** One rsync invocation of a two-stage first hop (first-hop.ts; ftpsync.ts makes ftpsync's). */
export interface Stage {
  args: string[]
  env?: NodeJS.ProcessEnv
}

export interface RsyncOptions {
  env?: NodeJS.ProcessEnv
  /** Every line rsync prints (stdout and stderr), for the repo's log. */
  onLine?: (line: string) => void
  /** Progress from --info=progress2: bytes so far and the percentage rsync estimates. */
  onProgress?: (bytes: number, percent: number) => void
  /** Called with the child so an emergency stop can signal it. */
  onChild?: (child: ChildProcess | undefined) => void
}

/** Running rsync processes, so that an emergency stop ends them before the runner exits. */
export const liveRsync = new Set<ChildProcess>()

/** Runs rsync with `args` (no shell) and reads its output; rejects only if rsync cannot start. */
export function runRsync(args: string[], opts: RsyncOptions = {}): Promise<RsyncRun> {
  const bin = rsyncBinary(opts.env)
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    liveRsync.add(child)
    let bytesReceived = 0
    const tail: string[] = []
    const reader = (isErr: boolean) => {
      let rest = ''
      return (chunk: Buffer) => {
        // progress2 redraws its line with \r; each redraw counts as a line here.
        const parts = (rest + chunk.toString('utf8')).split(/[\r\n]/)
        rest = parts.pop() ?? ''
        for (const line of parts) onLine(line, isErr)
      }
    }
    const onLine = (line: string, isErr: boolean) => {
      if (line.trim() === '') return
      const progress = /^\s*([\d,]+)\s+(\d+)%/.exec(line)
      if (progress) {
        opts.onProgress?.(Number(progress[1].replace(/,/g, '')), Number(progress[2]))
        return
      }
      const received = /^Total bytes received: ([\d,]+)/.exec(line)
      if (received) bytesReceived += Number(received[1].replace(/,/g, ''))
      if (isErr) {
        tail.push(line.trim())
        if (tail.length > 3) tail.shift()
      }
      opts.onLine?.(line)
    }
    child.stdout.on('data', reader(false))
    child.stderr.on('data', reader(true))
    child.on('error', err => {
      liveRsync.delete(child)
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'EACCES') reject(new DsyncError(ExitCode.config, 'runner.rsyncMissing', { bin }))
      else reject(err)
    })
    child.on('close', (code, signal) => {
      liveRsync.delete(child)
      resolve({ code: code ?? (signal ? 128 : 1), bytesReceived, errorTail: tail.join(' | ') })
    })
  })
}

/** rsync's exit codes that mean "some files vanished while listed": a live upstream, not a failure. */
export const RSYNC_VANISHED = 24
export const RSYNC_PARTIAL = 23

/** Asks an rsync daemon for its module list (`rsync rsync://HOST/`). */
export async function listModules(url: string, env?: NodeJS.ProcessEnv): Promise<{ modules: string[]; error?: string }> {
  const u = new URL(url)
  const root = `rsync://${u.username ? u.username + '@' : ''}${u.host}/`
  const lines: string[] = []
  const run = await runRsync(['--contimeout=10', '--timeout=20', root], { env, onLine: l => lines.push(l) })
  if (run.code !== 0) return { modules: [], error: run.errorTail || `rsync exit code ${run.code}` }
  return { modules: lines.map(l => l.split(/\s+/)[0]).filter(m => m !== '') }
}
