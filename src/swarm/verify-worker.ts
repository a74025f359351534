import { createHash, hash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import type { VerifyReply, VerifyRequest, WholeReply, WholeRequest } from './piece-verifier.js'

// The piece verifier's thread (piece-verifier.ts): SHA-1 of each piece, its pad zeros
// included, against the torrent's hash; SHA-256 of whole files against data.dsync's. The
// buffers go back with the verdicts.
let zeros = new Uint8Array(0)

parentPort!.on('message', (msg: VerifyRequest | WholeRequest) => (msg.kind === 'whole' ? checkWhole(msg) : checkPieces(msg)))

function checkWhole(msg: WholeRequest): void {
  const n = msg.spans.length / 2
  const ok = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(msg.buffer, msg.spans[2 * i], msg.spans[2 * i + 1])
    ok[i] = hash('sha256', data, 'hex') === msg.hexes.slice(64 * i, 64 * i + 64) ? 1 : 0
  }
  parentPort!.postMessage({ kind: 'whole', id: msg.id, buffer: msg.buffer, ok } satisfies WholeReply, [msg.buffer])
}

function checkPieces(msg: VerifyRequest): void {
  const ok = new Uint8Array(msg.buffers.length)
  msg.buffers.forEach((buffer, i) => {
    const length = msg.sizes[2 * i]
    const pad = msg.sizes[2 * i + 1]
    const sha1 = createHash('sha1').update(new Uint8Array(buffer, 0, length))
    if (pad > 0) {
      if (zeros.length < pad) zeros = new Uint8Array(pad)
      sha1.update(zeros.subarray(0, pad))
    }
    const digest = sha1.digest()
    ok[i] = digest.equals(msg.expected.subarray(20 * i, 20 * i + 20)) ? 1 : 0
  })
  parentPort!.postMessage({ kind: 'pieces', id: msg.id, buffers: msg.buffers, ok } satisfies VerifyReply, msg.buffers)
}
