import { createConnection, createServer, type Server } from 'node:net'
import { rmSync } from 'node:fs'

/**
 * The CLI talks to the running service over a unix socket under the home, not over the DTP
 * port: the allowlist may well refuse 127.0.0.1, and the socket's file permissions limit
 * control to the user who runs the service. One JSON request line, one JSON reply line.
 */
export type ControlRequest = { cmd: 'status' } | { cmd: 'reload' } | { cmd: 'stop' } | { cmd: 'ping' }

export function serveControl(path: string, handle: (req: ControlRequest) => Promise<unknown> | unknown): Promise<Server> {
  rmSync(path, { force: true }) // left behind by a killed service; the pid file check ran first
  const server = createServer(sock => {
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('error', () => sock.destroy())
    sock.on('data', async (chunk: string) => {
      buf += chunk
      if (buf.length > 4096) return sock.destroy()
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      let reply: unknown
      try {
        reply = await handle(JSON.parse(buf.slice(0, nl)) as ControlRequest)
      } catch (err) {
        reply = { ok: false, error: (err as Error).message }
      }
      sock.end(JSON.stringify(reply) + '\n')
    })
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}

/** Sends one request; rejects when no service answers (socket missing, refused, timeout). */
export function askControl<T>(path: string, req: ControlRequest, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path)
    let buf = ''
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error('no answer from the service'))
    }, timeoutMs)
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'))
    sock.on('data', (c: string) => (buf += c))
    sock.on('error', err => {
      clearTimeout(timer)
      reject(err)
    })
    sock.on('end', () => {
      clearTimeout(timer)
      try {
        resolve(JSON.parse(buf) as T)
      } catch {
        reject(new Error('malformed answer from the service'))
      }
    })
  })
}
