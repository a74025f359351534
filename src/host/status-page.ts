import { type Locale, localeOfAcceptLanguage, type MessageId, type MessageParams, tIn } from '../i18n/index.js'
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
 * there is one renderer and the browser never builds markup from data. The page speaks the
 * reader's language (Accept-Language, or `?lang=en|ko`), English or Korean.
 * Returns undefined for paths that are not the page's.
 */
export function statusPageRoute(pathname: string, query: URLSearchParams, status: () => HostStatus, acceptLanguage?: string): PageResponse | undefined {
  const asked = query.get('lang')
  const locale: Locale = asked === 'ko' || asked === 'en' ? asked : localeOfAcceptLanguage(acceptLanguage)
  if (pathname === '/' && query.get('part') === 'main') return html(renderMain(status(), locale))
  if (pathname === '/') return html(renderPage(status(), locale))
  // Exact paths: /status.js/ stays the info of a repository of that name.
  if (pathname === '/status.js') return { type: 'text/javascript; charset=utf-8', body: PAGE_SCRIPT, headers: SECURITY_HEADERS }
  if (pathname === '/status.css') return { type: 'text/css; charset=utf-8', body: PAGE_STYLE, headers: SECURITY_HEADERS }
  return undefined
}

function html(body: string): PageResponse {
  return { type: 'text/html; charset=utf-8', body, headers: { ...SECURITY_HEADERS, Vary: 'Accept-Language' } }
}

/** Text into HTML text or a double-quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}

/** A message in the reader's locale, escaped for HTML. */
function htmlText(locale: Locale): (id: MessageId, params?: MessageParams) => string {
  return (id, params) => escapeHtml(tIn(locale, id, params))
}

function renderPage(s: HostStatus, locale: Locale): string {
  const l = htmlText(locale)
  return `<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${l('page.title')}</title><link rel="stylesheet" href="/status.css"><script src="/status.js" defer></script></head>
<body data-refresh="${REFRESH_SECONDS}">
<h1>${l('page.title')}</h1>
<main id="status">${renderMain(s, locale)}</main>
<footer><a href="/status.json">status.json</a> · <a href="/metrics">metrics</a> · ${l('page.refresh', { seconds: REFRESH_SECONDS })}</footer>
</body></html>
`
}

const COLUMNS = ['page.repository', 'page.generation', 'page.age', 'page.files', 'page.size', 'page.peers', 'page.upload', 'page.uploaded'] as const

function renderMain(s: HostStatus, locale: Locale, now = Date.now()): string {
  const e = escapeHtml
  const l = htmlText(locale)
  const rows = s.repos.map(r => {
    const repo = encodeURIComponent(r.repo)
    return `<tr data-repo="${e(r.repo)}"><td class="repo"><a href="/${repo}/">${e(r.repo)}</a></td>` +
      `<td class="generation"><code title="${e(r.generation)}">${e(r.generation.slice(0, 12))}</code></td>` +
      `<td class="age">${e(r.madeAt > 0 ? formatAge((now - r.madeAt) / 1000, locale) : '?')}</td>` +
      `<td class="files num">${r.files}</td><td class="size num">${e(formatBytes(r.bytes))}</td>` +
      `<td class="peers num">${r.peers}</td><td class="rate num">${e(formatBytes(r.uploadRate))}/s</td>` +
      `<td class="uploaded num">${e(formatBytes(r.uploaded))}</td>` +
      `<td><a href="/${repo}/${repo}.torrent">torrent</a> <a href="${e(r.magnet)}">magnet</a></td></tr>`
  }).join('\n')
  const refused = s.refused.map(r => `<li><span class="what">${e(r.repo)}</span>: ${e(r.reason)}</li>`).join('\n')
  const limit = s.uploadLimit.host > 0 ? tIn(locale, 'page.uploadLimit', { mbit: s.uploadLimit.host }) : ''
  return `${s.motd ? `<pre class="motd">${e(s.motd)}</pre>` : ''}
<table><thead><tr>${COLUMNS.map(c => `<th>${l(c)}</th>`).join('')}<th></th></tr></thead>
<tbody>
${rows || `<tr><td colspan="9">${l('page.noRepo')}</td></tr>`}
</tbody></table>
${refused ? `<h2>${l('page.notServed')}</h2><ul class="refused">${refused}</ul>` : ''}
<p class="host">${l('page.host', { listen: s.listen.join(', '), limit, since: s.startedAt, updated: new Date(now).toISOString() })}</p>`
}

/** "3 d 4 h", "2 h 5 min", "12 min", "40 s" (in Korean: "3일 4시간", ...). */
export function formatAge(seconds: number, locale: Locale = 'en'): string {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return tIn(locale, 'page.age.s', { s })
  if (s < 3600) return tIn(locale, 'page.age.m', { m: Math.floor(s / 60) })
  if (s < 86_400) return tIn(locale, 'page.age.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) })
  return tIn(locale, 'page.age.d', { d: Math.floor(s / 86_400), h: Math.floor((s % 86_400) / 3600) })
}

/** Replaces <main> with a fresh server rendering; a failed fetch leaves the last one and says so. */
const PAGE_SCRIPT = `'use strict';
(function () {
  var main = document.getElementById('status');
  var seconds = Number(document.body.getAttribute('data-refresh')) || 5;
  var lang = encodeURIComponent(document.documentElement.getAttribute('lang') || 'en');
  function refresh() {
    fetch('/?part=main&lang=' + lang, { cache: 'no-store' }).then(function (res) {
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
