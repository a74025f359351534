import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { after, test } from 'node:test'
import { STAGE_DIRS, stagedPath, stageShard } from '../src/sync/part-writer.js'
import { ITEM_LAST } from '../src/sync/stage-items.js'
import { releaseStageBuffers, resetStageBufferPeak, stageBuffers, StageWriter, tightStageBuffers } from '../src/sync/stage-writer.js'
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

/** This process's resident bytes and threads now (/proc/self/status). */
function selfStatus(): { rss: number; threads: number } {
  const s = readFileSync('/proc/self/status', 'utf8')
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)![1]) * 1024, threads: Number(/Threads:\s+(\d+)/.exec(s)![1]) }
}

test('the end of a pull\'s transfers gives the stage writer\'s empty batches back to the system and stops its parked workers (released before the apply)', { timeout: 120_000 }, async () => {
  const dir = tempDir('dsync-stage-')
  for (let i = 0; i < STAGE_DIRS; i++) mkdirSync(`${dir}/${i}`)
  let failure: Error | undefined
  const writer = new StageWriter(dir, {
    onWritten: () => {}, onVerified: () => {}, onBusy: () => {},
    onMismatch: hex => { failure ??= new Error(`mismatch ${hex}`) },
    onError: err => { failure ??= err },
  })
  try {
    // Batches come back full-sized and are kept as spares, then handed on when the writer closes.
    for (const { hex, data } of laneZeroFiles(24)) writer.write(hex, 0, data, data.length, ITEM_LAST)
    await writer.drain()
  } finally {
    await writer.close()
  }
  assert.equal(failure, undefined)
  const handedOn = stageBuffers.spare
  assert.ok(handedOn >= 8 * MiB, `empty batches handed on to a next writer: ${handedOn / MiB} MiB`)
  const before = selfStatus()
  const stopping = releaseStageBuffers()
  // The buffers go at once (the workers stop after this turn): their pages themselves, not only
  // the references (a buffer only dropped stays resident, in glibc's heap, until V8 collects it,
  // and often after).
  const given = before.rss - selfStatus().rss
  await stopping
  const after = selfStatus()
  assert.equal(stageBuffers.spare, 0, 'no batch is kept for a next writer')
  assert.ok(given >= 0.75 * handedOn, `${(given / MiB).toFixed(1)} MiB of ${handedOn / MiB} MiB of batches left the process's RSS`)
  assert.ok(before.threads - after.threads >= STAGE_DIRS, `the parked stage workers stopped: threads ${before.threads} -> ${after.threads}`)
})
