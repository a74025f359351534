import { formatBytes } from '../ui/units.js'
import type { RepoStatus } from './seeder.js'

export interface HostStatus {
  pid: number
  startedAt: string
  listen: string[]
  firewall: { restricted: boolean; entries: string[] }
  motd: string
  repos: RepoStatus[]
  /** Listed repos that are not being served, and why (no data.dsync, torrent mismatch...). */
  refused: { repo: string; reason: string }[]
  openFiles: number
  counters: { httpRequests: number; refusedConnections: number }
  /** Configured `upload-limit=` values, Mbit/s (0 = none). */
  uploadLimit: { host: number; repos: Record<string, number> }
  /** Connections open on the DTP port, and block bytes queued for peers' sockets (limits). */
  connections: number
  queuedBytes: number
  /** process.memoryUsage() of the service, bytes. */
  memory?: { rss: number; heapUsed: number; external: number; arrayBuffers: number }
}

/** The table `dsync status` prints. */
export function formatStatus(s: HostStatus): string {
  const head = ['REPO', 'GENERATION', 'FILES', 'BYTES', 'PEERS', 'UPLOAD', 'UPLOADED']
  const rows = s.repos.map(r => [
    r.repo, r.generation.slice(0, 12), String(r.files), formatBytes(r.bytes), String(r.peers),
    `${formatBytes(r.uploadRate)}/s`, formatBytes(r.uploaded) + (r.staleFiles > 0 ? ` (${r.staleFiles} stale)` : ''),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  const limit = s.uploadLimit?.host ? `, upload limit ${s.uploadLimit.host} Mbit/s` : ''
  const out = [`pid ${s.pid}, listening on ${s.listen.join(', ')}, since ${s.startedAt}${limit}`, line(head), ...rows.map(line)]
  for (const r of s.refused) out.push(`${r.repo}: not served: ${r.reason}`)
  return out.join('\n') + '\n'
}
