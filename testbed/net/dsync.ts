import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { CLI } from '../cli.js'
import type { NetBed, NetNode } from './netns.js'

/** Hosts sit in separate namespaces, so every one of them uses the default DTP port. */
export const DTP_PORT = 47921

export interface NsRun {
  code: number
  stdout: string
  stderr: string
  seconds: number
}

export interface NsRunOptions {
  env?: NodeJS.ProcessEnv
  /** Called with each complete stdout line as it arrives (JSON progress events). */
  onLine?: (line: string) => void
  /** Killed (SIGKILL, through the whole `ip netns exec` process group) after this long. */
  timeoutMs?: number
}

/** Runs a command inside a node's namespace to completion; wall time from spawn to exit. */
export function runIn(bed: NetBed, node: NetNode, cmd: string, args: string[], opts: NsRunOptions = {}): Promise<NsRun> {
  const [exe, argv] = bed.argv(node, cmd, args)
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(exe, argv, {
      env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: '', DSYNC_LANG: '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let stdout = ''
    let stderr = ''
    let partial = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      if (!opts.onLine) return
      partial += d
      const lines = partial.split('\n')
      partial = lines.pop()!
      for (const l of lines) opts.onLine(l)
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = opts.timeoutMs
      ? setTimeout(() => {
        stderr += `\n[killed after ${opts.timeoutMs} ms]`
        try {
          process.kill(-child.pid!, 'SIGKILL')
        } catch {
          // already gone
        }
      }, opts.timeoutMs)
      : undefined
    child.on('error', reject)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr, seconds: (performance.now() - started) / 1000 })
    })
  })
}

/** The dsync CLI inside a node's namespace. */
export function dsyncIn(bed: NetBed, node: NetNode, args: string[], opts: NsRunOptions = {}): Promise<NsRun> {
  return runIn(bed, node, process.execPath, [CLI, ...args], opts)
}

export interface NetHost {
  node: NetNode
  home: string
  /** `ADDRESS:47921`, as --peer takes it. */
  peer: string
  log(): string
}

/**
 * A dsync home for `node` serving the repository folders `saves` (already gendsync'ed: the
 * homes of several hosts may point at the same folders; data.dsync lives in them; all in one
 * parent folder, the webroot). Each repo is named after its folder. Listens on the node's
 * namespace address only. `firewall` is written to dtp/firewall.conf as is.
 */
export function makeNetHome(base: string, node: NetNode, saves: string | string[], firewall?: string): NetHost {
  const home = join(base, `home-${node.ns.split('-').pop()}`)
  const list = typeof saves === 'string' ? [saves] : saves
  mkdirSync(join(home, 'repos'), { recursive: true })
  mkdirSync(join(home, 'dtp'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${dirname(list[0])}\nlisten=${node.address}\nport=${DTP_PORT}\n`)
  for (const save of list) {
    if (dirname(save) !== dirname(list[0])) throw new Error(`${save} is not beside ${list[0]}`)
    writeFileSync(join(home, 'repos', `${basename(save)}.conf`), `repo=${basename(save)}\nsave=${save}\ndsync=true\n`)
  }
  writeFileSync(join(home, 'dtp', 'list.conf'), list.map(s => `/${basename(s)}\n`).join(''))
  if (firewall !== undefined) writeFileSync(join(home, 'dtp', 'firewall.conf'), firewall)
  return { node, home, peer: `${node.address}:${DTP_PORT}`, log: () => readFileSync(join(home, 'log', 'dtp.log'), 'utf8') }
}

/**
 * Starts `dsync service` inside the host's namespace (it detaches and stays there; the
 * bed's destroy stops it with the rest of the namespace's processes).
 */
export async function startNetHost(bed: NetBed, host: NetHost): Promise<void> {
  const r = await dsyncIn(bed, host.node, ['--home', host.home, 'service'], { timeoutMs: 120_000 })
  if (r.code !== 0) throw new Error(`dsync service in ${host.node.ns} failed (${r.code}): ${r.stderr.trim()}`)
}

export interface PullSummary {
  event: 'summary'
  bytesReceived: number
  bytesPerHost: Record<string, number>
  seconds: number
  [key: string]: unknown
}

/** The last stdout line of `dsync --json pull`, parsed; undefined when it is not a summary. */
export function pullSummary(stdout: string): PullSummary | undefined {
  const last = stdout.trim().split('\n').pop() ?? ''
  try {
    const s = JSON.parse(last) as PullSummary
    return s.event === 'summary' ? s : undefined
  } catch {
    return undefined
  }
}
