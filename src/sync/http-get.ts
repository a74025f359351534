import { DsyncError, ExitCode } from '../errors.js'

/**
 * GET a URL into memory with a byte cap and a timeout: a hostile or broken server can
 * neither make us allocate without bound nor hang the sync.
 */
export async function httpGet(url: string, capBytes: number, what: string, timeoutMs = 20_000): Promise<Buffer> {
  // A ref'd timer, not AbortSignal.timeout(): that one is unref'd, and a request stuck where
  // undici holds no ref'd handle would let the process exit mid-request.
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`no answer in ${timeoutMs / 1000}s`)), timeoutMs)
  try {
    return await fetchCapped(url, capBytes, what, controller.signal)
  } finally {
    clearTimeout(timer)
  }
}

async function fetchCapped(url: string, capBytes: number, what: string, signal: AbortSignal): Promise<Buffer> {
  let res: Response
  try {
    res = await fetchOnce(url, signal)
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } }
    const reason = signal.aborted ? String((signal.reason as Error)?.message ?? 'timed out') : e.cause?.code ?? e.cause?.message ?? e.message
    throw new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason })
  }
  if (!res.ok) throw new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: `HTTP ${res.status}` })
  const declared = Number(res.headers.get('content-length') ?? 0)
  if (declared > capBytes) throw new DsyncError(ExitCode.badData, 'sync.tooLarge', { what, from: url, cap: capBytes })
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length
      if (size > capBytes) throw new DsyncError(ExitCode.badData, 'sync.tooLarge', { what, from: url, cap: capBytes })
      chunks.push(Buffer.from(chunk))
    }
  } catch (err) {
    if (err instanceof DsyncError) throw err
    const e = err as Error & { cause?: { code?: string } }
    throw new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: e.cause?.code ?? e.message })
  }
  return Buffer.concat(chunks)
}

/**
 * undici keeps connections alive and reuses them; when our event loop was busy past the
 * server's keep-alive timeout (parsing a 200k-entry data.dsync takes seconds), the next GET
 * goes out on a socket the server has just closed and fails with UND_ERR_SOCKET before any
 * response. A GET is idempotent: that one case is retried once, on a fresh connection.
 */
async function fetchOnce(url: string, signal: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { signal, redirect: 'follow' })
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code
    if (signal.aborted || (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET')) throw err
    return fetch(url, { signal, redirect: 'follow' })
  }
}
