import { request as httpRequest } from 'node:http'
import { WEBHOOK_TIMEOUT_MS } from '../config/defaults.js'
import { request as httpsRequest } from 'node:https'

export interface SyncReport {
  repo: string
  result: 'ok' | 'failed' | 'stopped'
  /** Seconds the sync took. */
  duration: number
  /** Bytes received from the upstream. */
  bytes: number
  error?: string
  /** The upstream it came from (dtp://..., rsync://...). */
  source?: string
  host?: string
}



/**
 * The JSON body: Slack reads `text`, Discord reads `content`; both ignore the other fields,
 * which carry the same result for scripts.
 */
export function webhookBody(r: SyncReport, summary: string): string {
  return JSON.stringify({ text: summary, content: summary, ...r })
}

/**
 * POSTs one sync's result. Resolves to undefined when the receiver answered 2xx, else to the
 * reason; never rejects: a webhook outage must not fail the sync it reports.
 */
export function postWebhook(url: string, body: string): Promise<string | undefined> {
  return new Promise(resolve => {
    let settled = false
    const done = (reason?: string) => {
      if (!settled) resolve(reason)
      settled = true
    }
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return done(`not a URL: ${url}`)
    }
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest
    const req = send(target, {
      method: 'POST', timeout: WEBHOOK_TIMEOUT_MS,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'dsync' },
    }, res => {
      res.resume()
      res.on('end', () => done(res.statusCode && res.statusCode < 300 ? undefined : `HTTP ${res.statusCode}`))
      res.on('error', err => done(err.message))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer in ${WEBHOOK_TIMEOUT_MS / 1000} s`)))
    req.on('error', err => done(err.message))
    req.end(body)
  })
}
