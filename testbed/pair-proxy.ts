import { connect, createServer, type Socket } from 'node:net'
import { after } from 'node:test'

/** What a test's proxy does with one client connection and its own to the target. */
export type PairHandler = (client: Socket, upstream: Socket, end: () => void) => void

/**
 * A TCP proxy on a loopback address in front of a real host, each client connection paired with
 * one of its own to `target`; `handle` moves the bytes (unchanged, held, cut: the test's fault).
 * Either side closing or failing ends both. Closed after the test file.
 */
export async function startPairProxy(listenHost: string, target: { host: string; port: number }, handle: PairHandler): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    const upstream = connect(target)
    sockets.add(client).add(upstream)
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    handle(client, upstream, end)
  })
  await new Promise<void>(resolve => server.listen({ host: listenHost, port: 0 }, resolve))
  after(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const a = server.address() as { address: string; port: number }
  return `${a.address}:${a.port}`
}
