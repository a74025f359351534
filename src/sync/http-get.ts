import { DsyncError, ExitCode } from '../errors.js'

/**
 * GET a URL into memory with a byte cap and a timeout: a hostile or broken server can
 * neither make us allocate without bound nor hang the sync.
 */
export async function httpGet(url: string, capBytes: number, what: string, timeoutMs = 20_000): Promise<Buffer> {
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' })
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } }
    throw new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: e.cause?.code ?? e.cause?.message ?? e.message })
  }
  if (!res.ok) throw new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: `HTTP ${res.status}` })
  const declared = Number(res.headers.get('content-length') ?? 0)
  if (declared > capBytes) throw new DsyncError(ExitCode.badData, 'sync.tooLarge', { what, from: url, cap: capBytes })
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length
    if (size > capBytes) throw new DsyncError(ExitCode.badData, 'sync.tooLarge', { what, from: url, cap: capBytes })
    chunks.push(Buffer.from(chunk))
  }
  return Buffer.concat(chunks)
}
