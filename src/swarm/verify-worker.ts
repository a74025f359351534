import { createHash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import type { VerifyReply, VerifyRequest } from './piece-verifier.js'

// The piece verifier's thread (piece-verifier.ts): SHA-1 of each piece, its pad zeros
// included, against the torrent's hash. The buffers go back with the verdicts.
let zeros = new Uint8Array(0)

parentPort!.on('message', (msg: VerifyRequest) => {
  const ok = new Uint8Array(msg.buffers.length)
  msg.buffers.forEach((buffer, i) => {
    const length = msg.sizes[2 * i]
    const pad = msg.sizes[2 * i + 1]
    const hash = createHash('sha1').update(new Uint8Array(buffer, 0, length))
    if (pad > 0) {
      if (zeros.length < pad) zeros = new Uint8Array(pad)
      hash.update(zeros.subarray(0, pad))
    }
    const digest = hash.digest()
    ok[i] = digest.equals(msg.expected.subarray(20 * i, 20 * i + 20)) ? 1 : 0
  })
  parentPort!.postMessage({ id: msg.id, buffers: msg.buffers, ok } satisfies VerifyReply, msg.buffers)
})
