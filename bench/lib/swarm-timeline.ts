import { existsSync, readFileSync } from 'node:fs'

interface Sample {
  t: number
  up: number
  paused: boolean
  peers: [string, number, number, number, number][]
}

/**
 * Where a `dsync pull`'s time went, read from its DSYNC_SWARM_TRACE file (src/swarm/trace.ts:
 * phase marks and a sample per 250 ms of each download): when the transfer's first requests
 * left, when its last piece was verified, how long the rest took, and in how many samples the
 * stage writer held the download (paused: its workers were behind, nothing new was asked).
 * A transfer that is slow because the disk side holds it looks like a slow network in the
 * bench's totals; this says which it was. Undefined when the trace lacks the marks (an older
 * client, a failed pull).
 */
export function swarmTimeline(file: string, wallSeconds?: number): string | undefined {
  if (!existsSync(file)) return undefined
  const marks = new Map<string, number>()
  let held: number | undefined
  const samples: Sample[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    let j: { mark?: string; up: number } & Partial<Sample>
    try {
      j = JSON.parse(line)
    } catch {
      continue // empty, or cut short by a killed client
    }
    if (j.mark === 'early-adopted') held = (j as { held?: number }).held
    if (j.mark) marks.set(j.mark, j.up)
    else samples.push(j as Sample)
  }
  const planned = marks.get('plan-done')
  const last = marks.get('last-piece')
  const end = marks.get('committed')
  if (planned === undefined || last === undefined || end === undefined) return undefined
  // The transfer's downloader is the one sampled after the plan (the manifest's came before it).
  const transfer = samples.filter(s => s.up > planned && s.up <= last + 250)
  if (transfer.length === 0) return undefined
  const started = transfer[0].up - transfer[0].t
  const paused = transfer.filter(s => s.paused).length
  const idle = transfer.filter(s => s.peers.every(p => p[1] === 0)).length
  const sec = (ms: number) => (ms / 1000).toFixed(2)
  // An early fetch (src/sync/early-fetch.ts) starts the files' downloader before the plan.
  const early = held === undefined ? '' : ` (early fetch: ${(held / 1e6).toFixed(1)} MB held at the plan's end)`
  // The process's end as its parent saw it (wall time from its start, so `ip netns exec` and
  // node's start before its uptime count are in it too): what the exit after the commit costs.
  const ended = wallSeconds === undefined ? '' : `, ended +${Math.round(wallSeconds * 1000 - end)} ms`
  return `first requests at ${sec(started)} s${early}, last piece ${sec(last)} s, committed ${sec(end)} s${ended}; ` +
    `${paused} of ${transfer.length} samples paused by the stage writer, ${idle} with nothing received`
}
