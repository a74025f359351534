import { parentPort, workerData } from 'node:worker_threads'
import { PartWriter } from './part-writer.js'
import { unpackItems } from './stage-items.js'
import type { StageReply, StageRequest } from './stage-writer.js'

// The stage worker thread: writes batches of verified pieces into staging and checks each
// finished file's SHA-256, so the event loop only parses the wire and checks SHA-1.
// Each batch's buffer comes back with the answer, to be filled again.
const writer = new PartWriter(workerData.dir as string)

parentPort!.on('message', (msg: StageRequest) => {
  if (msg.type === 'close') {
    writer.closeAll()
    parentPort!.postMessage({ type: 'closed' } satisfies StageReply)
    return
  }
  const verified: string[] = []
  const mismatched: string[] = []
  let error: StageReply['error']
  const bytes = new Uint8Array(msg.buffer)
  for (const it of unpackItems(msg.items)) {
    try {
      const outcome = writer.write(it.hex, it.offset, bytes.subarray(it.start, it.start + it.length), it.size, it.flags, it.meta, it.ahead)
      if (outcome === 'verified') verified.push(it.hex)
      else if (outcome === 'mismatch') mismatched.push(it.hex)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      error = { path: writer.partPath(it.hex), code: e.code, message: e.message }
      break
    }
  }
  parentPort!.postMessage({ type: 'done', id: msg.id, buffer: msg.buffer, verified, mismatched, error } satisfies StageReply, [msg.buffer])
})
