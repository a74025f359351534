import type { HostStatus } from './status.js'
import { mbitToBytesPerSecond } from './upload-limit.js'

/** The Content-Type of Prometheus' text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

type Labels = Record<string, string>
interface Family {
  name: string
  type: 'counter' | 'gauge'
  help: string
  samples: [Labels, number][]
}

/**
 * `/metrics` on the DTP port: the host's status as Prometheus text (exposition format 0.0.4).
 * Names follow Prometheus' rules: one `dsync_host_` prefix, base units (bytes, seconds),
 * counters end in `_total`, every family has HELP and TYPE. Label values are escaped; a
 * repository name is already restricted to [A-Za-z0-9._-], but escaping does not rely on it.
 */
export function renderMetrics(s: HostStatus, now = Date.now()): string {
  const perRepo = (pick: (r: HostStatus['repos'][number]) => number): [Labels, number][] =>
    s.repos.map(r => [{ repo: r.repo }, pick(r)])
  const families: Family[] = [
    { name: 'dsync_host_uploaded_bytes_total', type: 'counter', help: 'Piece data sent to peers, per repository, across its generations.', samples: perRepo(r => r.uploaded) },
    { name: 'dsync_host_upload_rate_bytes_per_second', type: 'gauge', help: 'Piece data sent per second over the last seconds, per repository.', samples: perRepo(r => r.uploadRate) },
    { name: 'dsync_host_peers', type: 'gauge', help: 'Peers connected, per repository.', samples: perRepo(r => r.peers) },
    { name: 'dsync_host_block_requests_total', type: 'counter', help: 'Block requests received from peers, per repository.', samples: perRepo(r => r.requests) },
    { name: 'dsync_host_stale_rejects_total', type: 'counter', help: 'Block requests refused because a file changed on disk after gendsync, per repository.', samples: perRepo(r => r.staleRejects) },
    { name: 'dsync_host_stale_files', type: 'gauge', help: 'Files of the served generation found changed on disk.', samples: perRepo(r => r.staleFiles) },
    { name: 'dsync_host_generation_age_seconds', type: 'gauge', help: "Seconds since the served generation's data.dsync was written.", samples: perRepo(r => (r.madeAt > 0 ? Math.max(0, (now - r.madeAt) / 1000) : NaN)) },
    {
      name: 'dsync_host_generation_info', type: 'gauge', help: 'The served generation (data.dsync SHA-256) and infohash of each repository; always 1.',
      samples: s.repos.map(r => [{ repo: r.repo, generation: r.generation, infohash: r.infoHash }, 1]),
    },
    { name: 'dsync_host_files', type: 'gauge', help: 'Files in the served generation, per repository.', samples: perRepo(r => r.files) },
    { name: 'dsync_host_size_bytes', type: 'gauge', help: 'Bytes of file data in the served generation, per repository.', samples: perRepo(r => r.bytes) },
    { name: 'dsync_host_http_requests_total', type: 'counter', help: 'HTTP requests received on the DTP port.', samples: [[{}, s.counters.httpRequests]] },
    { name: 'dsync_host_refused_connections_total', type: 'counter', help: 'Connections refused by firewall.conf (reset before any byte).', samples: [[{}, s.counters.refusedConnections]] },
    {
      name: 'dsync_host_upload_limit_bytes_per_second', type: 'gauge', help: 'Configured upload limit (0 = none): the whole host, and each repository that has one.',
      samples: [[{ scope: 'host' }, mbitToBytesPerSecond(s.uploadLimit.host)], ...Object.entries(s.uploadLimit.repos).map(([repo, mbit]): [Labels, number] => [{ scope: 'repo', repo }, mbitToBytesPerSecond(mbit)])],
    },
    { name: 'dsync_host_repositories_refused', type: 'gauge', help: 'Repositories listed in list.conf but not served (see dsync status).', samples: [[{}, s.refused.length]] },
    { name: 'dsync_host_open_files', type: 'gauge', help: 'Repository files held open by the descriptor cache.', samples: [[{}, s.openFiles]] },
    { name: 'dsync_host_start_time_seconds', type: 'gauge', help: 'When the service started, in seconds since the Unix epoch.', samples: [[{}, Date.parse(s.startedAt) / 1000]] },
  ]
  return families.map(writeFamily).join('')
}

function writeFamily(f: Family): string {
  let out = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`
  for (const [labels, value] of f.samples) out += `${f.name}${writeLabels(labels)} ${writeValue(value)}\n`
  return out
}

function writeLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
}

/** Label values escape backslash, double quote and line feed (exposition format rules). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function writeValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}
