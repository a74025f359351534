import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

/** The parts of V8's .cpuprofile (node --cpu-prof) that self time needs. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface ProfileSummary {
  totalMs: number
  idleMs: number
  gcMs: number
  programMs: number
  /** Self time by function (name file:line), largest first. */
  top: { name: string; ms: number; share: number }[]
  /** Self time by source file (or native/internal group), largest first. */
  byFile: { file: string; ms: number; share: number }[]
}

/** Self time per function of a .cpuprofile, with idle, GC and "(program)" apart. */
export function summarizeCpuProfile(file: string, topN = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(p.nodes.map(n => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the gap before sample i; attributing it to sample i is V8's own convention.
    const dt = (p.timeDeltas[i] ?? 0) / 1000
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt)
  }
  const fn = new Map<string, number>()
  const files = new Map<string, number>()
  let totalMs = 0
  let idleMs = 0
  let gcMs = 0
  let programMs = 0
  for (const [id, ms] of self) {
    const cf = byId.get(id)!.callFrame
    totalMs += ms
    if (cf.functionName === '(idle)') idleMs += ms
    else if (cf.functionName === '(garbage collector)') gcMs += ms
    else if (cf.functionName === '(program)') programMs += ms
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''
    const name = `${cf.functionName || '(anonymous)'}${where ? ' ' + where : ''}`
    fn.set(name, (fn.get(name) ?? 0) + ms)
    const group = cf.url ? shortUrl(cf.url) : cf.functionName
    files.set(group, (files.get(group) ?? 0) + ms)
  }
  const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1])
  return {
    totalMs, idleMs, gcMs, programMs,
    top: rank(fn).slice(0, topN).map(([name, ms]) => ({ name, ms, share: ms / totalMs })),
    byFile: rank(files).slice(0, topN).map(([file, ms]) => ({ file, ms, share: ms / totalMs })),
  }
}

function shortUrl(url: string): string {
  const m = /node_modules\/(.+)$/.exec(url) ?? /\/dist\/(.+)$/.exec(url)
  if (m) return m[1]
  if (url.startsWith('node:')) return url
  return basename(url)
}
