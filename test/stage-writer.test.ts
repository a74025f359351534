import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { after, test } from 'node:test'
import { STAGE_DIRS, stagedPath, stageShard } from '../src/sync/part-writer.js'
import { ITEM_LAST } from '../src/sync/stage-items.js'
import { resetStageBufferPeak, stageBuffers, StageWriter, tightStageBuffers } from '../src/sync/stage-writer.js'
import { tempDir } from '../testbed/tree.js'

const MiB = 1 << 20
/**
 * The bounds on the stage writer's batch buffers in a pull of a very long list (the full route
 * sets them from 500,000 entries; docs/SCALE.md, "Bootstrap memory: the stage lanes' buffers
 * bounded"): a lane tells the pull to pause once 16 MiB of batches are with its worker,
 * and at most 24 MiB of empty batches (3 per lane, or as many handed on between writers) stay
 * alive. They were 32 MiB and 40 MiB per lane: a worker that lagged left 74-104 MiB of
 * ArrayBuffers in the 1M-file bootstrap's client.
 */
const PAUSE_AFTER = 16 * MiB
const SPARE_AT_MOST = 24 * MiB

/** One-piece files of 1 MiB whose SHA-256 puts them all on stage lane 0. */
function laneZeroFiles(n: number): { hex: string; data: Buffer }[] {
  const files: { hex: string; data: Buffer }[] = []
  while (files.length < n) {
    const data = randomBytes(MiB)
    const hex = createHash('sha256').update(data).digest('hex')
    if (stageShard(hex) === 0) files.push({ hex, data })
  }
  return files
}

test('the stage writer bounds its batch buffers for a huge pull: a lagging worker pauses the pull at 16 MiB, and at most 24 MiB of empty batches are kept; every file is staged', { timeout: 120_000 }, async () => {
  // Registered before the temporary folder's removal, so the workers stop before it goes (also when an assertion fails).
  let stop: (() => Promise<void>) | undefined
  after(async () => {
    await stop?.()
    tightStageBuffers(false)
  })
  tightStageBuffers(true)
  // Another pull of a long list in the same process (the runner's syncps) starts and ends: this one's bounds stay tight.
  tightStageBuffers(true)
  tightStageBuffers(false)
  const dir = tempDir('dsync-stage-')
  for (let i = 0; i < STAGE_DIRS; i++) mkdirSync(`${dir}/${i}`)
  const files = laneZeroFiles(48)
  const verified = new Set<string>()
  const busy: boolean[] = []
  let queued = 0
  let queuedAtPause = -1
  let failure: Error | undefined
  const writer = new StageWriter(dir, {
    onWritten: () => {},
    onVerified: hex => verified.add(hex),
    onMismatch: hex => { failure ??= new Error(`mismatch ${hex}`) },
    onError: err => { failure ??= err },
    onBusy: b => {
      busy.push(b)
      if (b && queuedAtPause < 0) queuedAtPause = queued
    },
  })
  stop = () => writer.close()
  resetStageBufferPeak()
  // All in one event-loop turn: the worker cannot answer, so every full batch stays with it
  // (what a worker that lags behind the network sees).
  for (const { hex, data } of files) {
    queued += data.length
    writer.write(hex, 0, data, data.length, ITEM_LAST)
  }
  assert.ok(queuedAtPause > 0, `the writer asked for a pause (${queued / MiB} MiB queued to one lane)`)
  // The batch that reaches the high water is sent when the next piece does not fit in it.
  assert.ok(queuedAtPause <= PAUSE_AFTER + MiB, `paused after ${queuedAtPause / MiB} MiB queued to one lane (at most ${PAUSE_AFTER / MiB} with its worker)`)
  await writer.drain()
  assert.equal(failure, undefined)
  assert.equal(busy.at(-1), false, 'the pull may go on once the worker caught up')
  assert.ok(stageBuffers.sparePeak <= SPARE_AT_MOST, `empty batches kept: at most ${stageBuffers.sparePeak / MiB} MiB (bound ${SPARE_AT_MOST / MiB})`)
  assert.ok(stageBuffers.sparePeak > 0, 'batches came back to be reused')
  assert.equal(stageBuffers.held, stageBuffers.spare, 'drained: nothing is with a worker or filling')
  stop = undefined
  await writer.close()
  assert.ok(stageBuffers.spare <= SPARE_AT_MOST, `handed on to the next writer: ${stageBuffers.spare / MiB} MiB`)
  assert.equal(verified.size, files.length)
  for (const { hex, data } of files) assert.ok(readFileSync(stagedPath(dir, hex)).equals(data), `${hex} staged whole`)
})
