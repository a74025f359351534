import { formatBytes } from '../ui/units.js'
import type { HostStatus } from './status.js'

export interface PageResponse {
  type: string
  body: string
  headers: Record<string, string>
}

/** Seconds between the page's refreshes of its table. */
const REFRESH_SECONDS = 5

/**
 * No inline script or style, no plugin, no frame: even if some text escaped the escaping,
 * the browser would not run it. The page's own script and style come from this host.
 */
const CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const SECURITY_HEADERS = { 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' }

/**
 * The host's HTML status page (`/`): per repository generation, age, files, size, peers,
 * upload rate, and the welcome message. The server renders everything, escaped; the page's
 * script (`/status.js`) re-fetches the `<main>` part (`/?part=main`) every few seconds, so
 * there is one renderer and the browser never builds markup from data.
 * Returns undefined for paths that are not the page's.
 */
export function statusPageRoute(pathname: string, query: URLSearchParams, status: () => HostStatus): PageResponse | undefined {
  if (pathname === '/' && query.get('part') === 'main') return html(renderMain(status()))
  if (pathname === '/') return html(renderPage(status()))
  // Exact paths: /status.js/ stays the info of a repository of that name.
  if (pathname === '/status.js') return { type: 'text/javascript; charset=utf-8', body: PAGE_SCRIPT, headers: SECURITY_HEADERS }
  if (pathname === '/status.css') return { type: 'text/css; charset=utf-8', body: PAGE_STYLE, headers: SECURITY_HEADERS }
  return undefined
}

function html(body: string): PageResponse {
  return { type: 'text/html; charset=utf-8', body, headers: SECURITY_HEADERS }
}

/** Text into HTML text or a double-quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}

function renderPage(s: HostStatus): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>DTP host</title><link rel="stylesheet" href="/status.css"><script src="/status.js" defer></script></head>
<body data-refresh="${REFRESH_SECONDS}">
<h1>DTP host</h1>
<main id="status">${renderMain(s)}</main>
<footer><a href="/status.json">status.json</a> · <a href="/metrics">metrics</a> · refreshes every ${REFRESH_SECONDS} s</footer>
</body></html>
`
}

function renderMain(s: HostStatus, now = Date.now()): string {
  const e = escapeHtml
  const rows = s.repos.map(r => {
    const repo = encodeURIComponent(r.repo)
    return `<tr data-repo="${e(r.repo)}"><td class="repo"><a href="/${repo}/">${e(r.repo)}</a></td>` +
      `<td class="generation"><code title="${e(r.generation)}">${e(r.generation.slice(0, 12))}</code></td>` +
      `<td class="age">${e(r.madeAt > 0 ? formatAge((now - r.madeAt) / 1000) : '?')}</td>` +
      `<td class="files num">${r.files}</td><td class="size num">${e(formatBytes(r.bytes))}</td>` +
      `<td class="peers num">${r.peers}</td><td class="rate num">${e(formatBytes(r.uploadRate))}/s</td>` +
      `<td class="uploaded num">${e(formatBytes(r.uploaded))}</td>` +
      `<td><a href="/${repo}/${repo}.torrent">torrent</a> <a href="${e(r.magnet)}">magnet</a></td></tr>`
  }).join('\n')
  const refused = s.refused.map(r => `<li><span class="what">${e(r.repo)}</span>: ${e(r.reason)}</li>`).join('\n')
  const limit = s.uploadLimit.host > 0 ? `; upload limit ${s.uploadLimit.host} Mbit/s` : ''
  return `${s.motd ? `<pre class="motd">${e(s.motd)}</pre>` : ''}
<table><thead><tr><th>repository</th><th>generation</th><th>age</th><th>files</th><th>size</th><th>peers</th><th>upload</th><th>uploaded</th><th></th></tr></thead>
<tbody>
${rows || '<tr><td colspan="9">no repository served</td></tr>'}
</tbody></table>
${refused ? `<h2>Not served</h2><ul class="refused">${refused}</ul>` : ''}
<p class="host">Listening on ${e(s.listen.join(', '))}${e(limit)}; up since ${e(s.startedAt)}; updated ${e(new Date(now).toISOString())}.</p>`
}

/** "3 d 4 h", "2 h 5 min", "12 min", "40 s". */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`
}

/** Replaces <main> with a fresh server rendering; a failed fetch leaves the last one and says so. */
const PAGE_SCRIPT = `'use strict';
(function () {
  var main = document.getElementById('status');
  var seconds = Number(document.body.getAttribute('data-refresh')) || 5;
  function refresh() {
    fetch('/?part=main', { cache: 'no-store' }).then(function (res) {
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return res.text();
    }).then(function (html) {
      main.innerHTML = html;
      main.removeAttribute('data-stale');
    }).catch(function () {
      main.setAttribute('data-stale', 'true');
    }).then(function () {
      setTimeout(refresh, seconds * 1000);
    });
  }
  setTimeout(refresh, seconds * 1000);
})();
`

const PAGE_STYLE = `body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; }
pre.motd { background: #f4f4f4; padding: 0.6em; white-space: pre-wrap; }
main[data-stale] { opacity: 0.5; }
footer { margin-top: 1em; font-size: 0.9em; }
`
