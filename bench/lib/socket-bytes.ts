import { writeFileSync } from 'node:fs'
import { Socket } from 'node:net'

/**
 * Preloaded into a benchmarked client (`node --import .../socket-bytes.js`): counts every
 * byte it reads from and writes to TCP sockets it opens (peer wire and HTTP alike, protocol
 * overhead included) and writes the totals, with its CPU time, as JSON to the file named by
 * DSYNC_BENCH_SOCKET_BYTES when the process exits. This is what crossed the network, not
 * what the program says it fetched.
 */
const out = process.env.DSYNC_BENCH_SOCKET_BYTES
if (out) {
  const open = new Set<Socket>()
  let closedRead = 0
  let closedWritten = 0
  let connections = 0
  const connect = Socket.prototype.connect
  Socket.prototype.connect = function (this: Socket, ...args: unknown[]) {
    if (!open.has(this)) {
      open.add(this)
      connections++
    }
    return (connect as (...a: unknown[]) => Socket).apply(this, args)
  } as typeof Socket.prototype.connect
  // Counted when the socket is destroyed (every way a socket ends goes through _destroy), not
  // on its 'close' event: the client removes a peer socket's 'close' listeners after the
  // handshake, and a socket left in `open` kept its peer's whole object graph alive (downloader,
  // stage buffers, data.dsync's bytes) and inflated the client's measured peak RSS (docs/SCALE.md).
  const destroy = Socket.prototype._destroy
  Socket.prototype._destroy = function (this: Socket, err: Error | null, cb: (err?: Error | null) => void) {
    if (open.delete(this)) {
      closedRead += this.bytesRead
      closedWritten += this.bytesWritten
    }
    return destroy.call(this, err, cb)
  }
  process.on('exit', () => {
    let read = closedRead
    let written = closedWritten
    for (const s of open) {
      read += s.bytesRead
      written += s.bytesWritten
    }
    const cpu = process.cpuUsage()
    writeFileSync(out, JSON.stringify({ read, written, connections, cpuSeconds: (cpu.user + cpu.system) / 1e6 }))
  })
}
