import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { DsyncError, ExitCode } from '../errors.js'

const MAX_REDIRECTS = 5

/**
 * GET a URL into memory with a byte cap and a timeout: a hostile or broken server can
 * neither make us allocate without bound nor hang the sync. node:http rather than fetch():
 * `--bind` must choose the source address (a host whose firewall.conf allows only that
 * address reset the info request that left from another one), and fetch has no such option.
 */
export async function httpGet(url: string, capBytes: number, what: string, timeoutMs = 20_000, localAddress?: string): Promise<Buffer> {
  let current = url
  for (let hop = 0; ; hop++) {
    const res = await getOnce(current, localAddress, timeoutMs)
    const location = res.headers.location
    if (res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400 && location && hop < MAX_REDIRECTS) {
      res.resume()
      current = new URL(location, current).toString()
      continue
    }
    if (res.statusCode !== 200) {
      res.resume()
      throw new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: `HTTP ${res.statusCode}` })
    }
    return readCapped(res, url, capBytes, what, timeoutMs)
  }
}

function getOnce(url: string, localAddress: string | undefined, timeoutMs: number, retry = true): Promise<IncomingMessage> {
  const u = new URL(url)
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(u, { localAddress, timeout: timeoutMs }, resolve)
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs / 1000}s`)))
    req.on('error', err => {
      // A kept-alive connection the server closed while we were busy (parsing a 200k-entry
      // data.dsync takes seconds, past the host's 5 s keep-alive): the GET went out on a dead
      // socket. Idempotent, so retried once on a fresh one (Node's documented pattern). EPIPE
      // is the same race when the host's FIN and then its RST for our GET land before the write
      // (seen at 1M files: a delta torrent fetch failed so and the pull left the delta chain).
      const code = (err as NodeJS.ErrnoException).code
      if (retry && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) return resolve(getOnce(url, localAddress, timeoutMs, false))
      reject(new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: code ?? err.message }))
    })
    req.end()
  })
}

function readCapped(res: IncomingMessage, url: string, capBytes: number, what: string, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(res.headers['content-length'] ?? 0)
    // Settled before destroy(): destroying emits 'aborted', which must not win.
    if (declared > capBytes) {
      reject(new DsyncError(ExitCode.badData, 'sync.tooLarge', { what, from: url, cap: capBytes }))
      return res.destroy()
    }
    // A ref'd timer: the process must not exit with a body still arriving.
    const timer = setTimeout(() => res.destroy(new Error(`no answer in ${timeoutMs / 1000}s`)), timeoutMs)
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > capBytes) {
        clearTimeout(timer)
        reject(new DsyncError(ExitCode.badData, 'sync.tooLarge', { what, from: url, cap: capBytes }))
        res.destroy()
      } else chunks.push(chunk)
    })
    res.on('end', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
    res.on('error', err => {
      clearTimeout(timer)
      reject(new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: (err as NodeJS.ErrnoException).code ?? err.message }))
    })
    res.on('aborted', () => {
      clearTimeout(timer)
      reject(new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: 'connection closed mid-body' }))
    })
  })
}
