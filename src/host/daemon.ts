import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { dtpDefaults } from '../config/init.js'
import { homePaths, resolveHome } from '../config/home.js'
import { DsyncError, ExitCode, describeErrno } from '../errors.js'
import { writeFilesIfMissing } from '../util/atomic-write.js'
import { withHugePages } from '../util/huge-pages.js'
import { liveOwner, ownPidLine, readPid, sameProcessAlive } from '../util/process.js'
import { askControl, serveControl } from './control.js'
import { DtpHost } from './host.js'
import { HostLog } from './log.js'
import { runtimeFiles } from './runtime-files.js'

/** How long `dsync service` waits for the background service to report ready. */
const READY_TIMEOUT_MS = 120_000
const PID_WATCH_MS = 5000

/** DSYNC's -service creates dtp/ with its three files; never overwrites an edited one. */
export function ensureDtpFiles(home: string): string[] {
  mkdirSync(homePaths(home).dtpDir, { recursive: true })
  return writeFilesIfMissing(dtpDefaults(home))
}

/** The pid of the running service of this home, if any (a stale pid file is ignored). */
export function runningPid(home: string): number | undefined {
  return liveOwner(runtimeFiles(home).pid)?.pid
}

/** `dsync service --foreground`: runs until SIGTERM/SIGINT or `stop-service`; SIGHUP reloads. */
export async function runForeground(homeFlag: string | undefined, json: boolean): Promise<void> {
  const home = resolveHome(homeFlag)
  const files = runtimeFiles(home)
  const other = runningPid(home)
  if (other !== undefined && other !== process.pid) throw new DsyncError(ExitCode.failed, 'host.alreadyRunning', { pid: other })
  ensureDtpFiles(home)
  const log = new HostLog(json)
  const host = new DtpHost({ home: homeFlag ?? home, log })
  try {
    await host.start()
  } catch (err) {
    await host.stop().catch(() => undefined)
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL' || e.code === 'EACCES') {
      throw new DsyncError(ExitCode.network, 'host.listenFailed', { reason: describeErrno(e) + ` (${e.message})` })
    }
    throw err
  }
  mkdirSync(files.dir, { recursive: true })
  writeFileSync(files.pid, ownPidLine())
  let stopping: Promise<void> | undefined
  let watch: NodeJS.Timeout | undefined
  let release: () => void = () => {}
  const finished = new Promise<void>(resolve => (release = resolve))
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(watch)
      await host.stop()
      control.close()
      rmSync(files.socket, { force: true })
      if (readPid(files.pid) === process.pid) rmSync(files.pid, { force: true })
      release()
      // Whatever handle is left (a peer's half-closed socket, a keep-alive timer) must not
      // keep a stopped service alive: stop-service waits for the process to end.
      setImmediate(() => process.exit(0))
    })()
    return stopping
  }
  const control = await serveControl(files.socket, req => {
    switch (req.cmd) {
      case 'ping': return { ok: true, pid: process.pid }
      case 'status': return { ok: true, status: host.status() }
      case 'reload': return host.reload()
      case 'stop':
        setImmediate(() => void stop())
        return { ok: true, pid: process.pid }
      default: return { ok: false, error: 'unknown command' }
    }
  })
  // A pid file removed or taken over (home deleted, a second service forced) means this
  // process can no longer be found by stop-service: it stops itself rather than linger.
  watch = setInterval(() => {
    if (readPid(files.pid) !== process.pid) void stop()
  }, PID_WATCH_MS)
  watch.unref()
  process.on('SIGHUP', () => host.reload())
  process.on('SIGTERM', () => void stop())
  process.on('SIGINT', () => void stop())
  await finished
}

/** `dsync service`: starts the foreground service detached, logging to the home, and waits until it serves. */
export async function startBackground(homeFlag: string | undefined, json: boolean, cliEntry: string): Promise<{ pid: number; log: string }> {
  const home = resolveHome(homeFlag)
  const files = runtimeFiles(home)
  const other = runningPid(home)
  if (other !== undefined) throw new DsyncError(ExitCode.failed, 'host.alreadyRunning', { pid: other })
  ensureDtpFiles(home)
  mkdirSync(dirname(files.log), { recursive: true })
  mkdirSync(files.dir, { recursive: true })
  const logFd = openSync(files.log, 'a')
  const args = [cliEntry, '--home', home, ...(json ? ['--json'] : []), 'service', '--foreground']
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', logFd, logFd], env: withHugePages(process.env) })
  closeSync(logFd)
  let exited: number | null | undefined
  child.on('exit', code => (exited = code))
  child.unref()
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (exited !== undefined) break
    try {
      const r = await askControl<{ ok: boolean; pid: number }>(files.socket, { cmd: 'ping' }, 2000)
      if (r.ok && r.pid === child.pid) return { pid: child.pid!, log: files.log }
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  if (exited === undefined) child.kill('SIGTERM')
  throw new DsyncError(ExitCode.failed, 'host.startFailed', { log: files.log, tail: logTail(files.log) })
}

/** `dsync stop-service`: asks the service to stop, then waits for the process to end. */
export async function stopService(homeFlag: string | undefined): Promise<number | undefined> {
  const home = resolveHome(homeFlag)
  const files = runtimeFiles(home)
  const owner = liveOwner(files.pid)
  if (owner === undefined) return undefined
  try {
    await askControl(files.socket, { cmd: 'stop' }, 5000)
  } catch {
    process.kill(owner.pid, 'SIGTERM') // control socket gone: the signal does the same
  }
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (!sameProcessAlive(owner)) return owner.pid
    await sleep(100)
  }
  if (sameProcessAlive(owner)) process.kill(owner.pid, 'SIGKILL')
  rmSync(files.pid, { force: true })
  return owner.pid
}

export async function controlRequest<T>(homeFlag: string | undefined, cmd: 'status' | 'reload'): Promise<T> {
  const home = resolveHome(homeFlag)
  if (runningPid(home) === undefined) throw new DsyncError(ExitCode.failed, 'host.notRunning', { home })
  try {
    return await askControl<T>(runtimeFiles(home).socket, { cmd }, 30_000)
  } catch (err) {
    throw new DsyncError(ExitCode.failed, 'host.noControl', { path: runtimeFiles(home).socket, reason: (err as Error).message })
  }
}

function logTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
    return lines.slice(-3).join(' | ')
  } catch {
    return '-'
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}
