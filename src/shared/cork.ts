import type { Socket } from 'node:net'

/** Sockets corked until the next turn of the event loop, with the turn's uncork. */
const corked = new WeakMap<Socket, NodeJS.Immediate>()

/**
 * Everything written to `socket` from now until the next turn of the event loop leaves in
 * one writev. With Nagle off, each small peer-wire message (a 17-byte request, a block's
 * 13-byte header) was otherwise its own send(). Host and client both batch this way.
 */
export function corkUntilNextTurn(socket: Socket): void {
  if (corked.has(socket)) return
  socket.cork()
  corked.set(socket, setImmediate(() => {
    corked.delete(socket)
    socket.uncork()
  }))
}

/**
 * Sends what corkUntilNextTurn held now, not at the next turn: for requests made just before a
 * long synchronous stretch (data.dsync's parse, the plan), which would otherwise wait it out.
 */
export function uncorkNow(socket: Socket): void {
  const turn = corked.get(socket)
  if (!turn) return
  clearImmediate(turn)
  corked.delete(socket)
  socket.uncork()
}
