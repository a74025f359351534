import { appendFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

/** Diagnostic: DSYNC_SWARM_TRACE=file appends one JSON line per 250 ms of a download. */
export interface TraceSource {
  peers(): { label: string; downloaded: number; requests: number; bytes: number; active: number }[]
  paused(): boolean
  remaining(): number
}

export function startTrace(src: TraceSource): (() => void) | undefined {
  const file = process.env.DSYNC_SWARM_TRACE
  if (!file) return undefined
  const t0 = performance.now()
  let elu = performance.eventLoopUtilization()
  const last = new Map<string, number>()
  let faults = process.resourceUsage().minorPageFault
  const tick = () => {
    // The process's minor page faults since the last sample (fresh memory touched: every thread's).
    const mf = process.resourceUsage().minorPageFault
    const dmf = mf - faults
    faults = mf
    const now = performance.eventLoopUtilization()
    const d = performance.eventLoopUtilization(now, elu)
    elu = now
    const peers = src.peers().map(p => {
      const delta = p.downloaded - (last.get(p.label) ?? 0)
      last.set(p.label, p.downloaded)
      return [p.label.split(':')[0].split('.').pop(), delta, p.requests, p.bytes, p.active]
    })
    appendFileSync(file, JSON.stringify({ t: Math.round(performance.now() - t0), up: Math.round(process.uptime() * 1000), elu: +d.utilization.toFixed(3), paused: src.paused(), left: src.remaining(), mf: dmf, peers }) + '\n')
  }
  const timer = setInterval(tick, 250)
  return () => { clearInterval(timer); tick() }
}

/**
 * Diagnostic: with DSYNC_SWARM_TRACE set, one line naming a phase of the pull and the process's
 * uptime in ms (where the time outside the transfer goes: see ARCHITECTURE "Swarm, session 7").
 */
export function traceMark(mark: string, extra?: Record<string, number>): void {
  const file = process.env.DSYNC_SWARM_TRACE
  if (file) appendFileSync(file, JSON.stringify({ mark, up: Math.round(process.uptime() * 1000), ...extra }) + '\n')
}
