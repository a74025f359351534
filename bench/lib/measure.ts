import { spawn } from 'node:child_process'
import { loadavg } from 'node:os'
import { readFileSync, readdirSync } from 'node:fs'

export interface ChildRun {
  seconds: number
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to completion and measures its wall time from spawn to exit. */
export function timeChild(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', reject)
    child.on('close', code => resolve({
      seconds: (performance.now() - started) / 1000,
      code,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    }))
  })
}

/** Like timeChild, but a non-zero exit is an error carrying the child's stderr. */
export async function timeChildOk(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ChildRun> {
  const r = await timeChild(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}: ${r.stderr.trim().slice(-2000)}`)
  return r
}

/** Runs `fn` `times` times in sequence and returns every result. */
export async function repeat<T>(times: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < times; i++) out.push(await fn(i))
  return out
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * What else is using the machine: load average and the processes that used the most CPU
 * over a one-second sample (read from /proc, so it needs no procps). Benchmarks print it
 * beside their numbers, since a shared 2-core machine makes timings noisy.
 */
export async function machineLoad(top = 4): Promise<string> {
  const [l1, l5] = loadavg()
  const before = cpuTicks()
  await new Promise(r => setTimeout(r, 1000))
  const after = cpuTicks()
  const busy: { cpu: number; cmd: string }[] = []
  for (const [pid, ticks] of after) {
    const prev = before.get(pid)
    if (prev === undefined || pid === process.pid) continue
    const cpu = (ticks.ticks - prev.ticks) / 100
    if (cpu >= 0.05) busy.push({ cpu, cmd: ticks.cmd })
  }
  busy.sort((a, b) => b.cpu - a.cpu)
  const list = busy.slice(0, top).map(p => `${p.cmd || '?'} (${Math.round(p.cpu * 100)}% CPU)`).join('; ')
  return `load average ${l1.toFixed(2)} (1 min), ${l5.toFixed(2)} (5 min); busy right now: ${list || 'nothing else'}`
}

function cpuTicks(): Map<number, { ticks: number; cmd: string }> {
  const out = new Map<number, { ticks: number; cmd: string }>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 70)
      out.set(Number(name), { ticks: Number(f[11]) + Number(f[12]), cmd })
    } catch {
      // the process exited while we looked
    }
  }
  return out
}

/** CPU ticks (1/100 s) of every process right now, by pid. */
export function cpuSnapshot(): Map<number, { ticks: number; cmd: string }> {
  return cpuTicks()
}

/**
 * Cores' worth of CPU that processes other than ours used between two snapshots: a
 * measurement taken while this was high shared the machine. Processes started or ended in
 * between are not seen (our own timed children end before the second snapshot).
 */
export function foreignCores(
  before: Map<number, { ticks: number; cmd: string }>, after: Map<number, { ticks: number; cmd: string }>,
  seconds: number, exclude: Set<number>,
): { cores: number; top: string } {
  let ticks = 0
  const busy: { t: number; cmd: string }[] = []
  for (const [pid, a] of after) {
    const b = before.get(pid)
    if (!b || pid === process.pid || exclude.has(pid)) continue
    const d = a.ticks - b.ticks
    ticks += d
    if (d > 0) busy.push({ t: d, cmd: a.cmd })
  }
  busy.sort((x, y) => y.t - x.t)
  const cores = seconds > 0 ? ticks / 100 / seconds : 0
  const top = busy.slice(0, 2).map(p => `${p.cmd.slice(0, 50)} ${Math.round(p.t / 100 / seconds * 100)}%`).join('; ')
  return { cores, top }
}

/** CPU seconds (user + system) of a process and of its children it has reaped. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100
  } catch {
    return 0
  }
}
