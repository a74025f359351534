import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { DsyncError } from '../src/errors.js'
import { allocDigests, allocJobs, hashTable, type TableJobs } from '../src/manifest/hash-table.js'
import { referenceDigests } from '../testbed/digests.js'
import { tempDir } from '../testbed/tree.js'

const P = 16384


/** Files of many sizes (empty, around the piece length, one over the 1 MiB read buffer), jobs in reverse slot order. */
function makeJobs(dir: string, count: number) {
  mkdirSync(dir, { recursive: true })
  const datas: Buffer[] = []
  const sizes = [0, 1, P - 1, P, P + 1, 3 * P + 5, (1 << 20) + 3]
  for (let i = 0; i < count; i++) datas.push(randomBytes(i < sizes.length ? sizes[i] : 1 + ((i * 7919) % 5000)))
  const pieceAt = new Float64Array(count + 1)
  for (let s = 0; s < count; s++) pieceAt[s + 1] = pieceAt[s] + Math.ceil(datas[s].length / P) * 20
  const paths = datas.map((d, s) => {
    const file = join(dir, `f${s}`)
    writeFileSync(file, d)
    return file
  })
  const jobs = allocJobs(count, paths.reduce((n, p) => n + Buffer.byteLength(p), 0))
  const bytes = Buffer.from(jobs.paths.buffer)
  let at = 0
  for (let j = 0; j < count; j++) {
    const s = count - 1 - j // slots need not follow job order
    const st = statSync(paths[s])
    jobs.pathAt[j] = at
    at += bytes.write(paths[s], at)
    jobs.size[j] = st.size
    jobs.mtimeMs[j] = st.mtimeMs
    jobs.ino[j] = st.ino
    jobs.slot[j] = s
    jobs.tail[j] = s % 3 === 0 ? 1 : 0
  }
  jobs.pathAt[count] = at
  return { datas, paths, pieceAt, jobs }
}

function check(jobs: TableJobs, datas: Buffer[], out: ReturnType<typeof allocDigests>) {
  for (let j = 0; j < jobs.count; j++) {
    const s = jobs.slot[j]
    const want = referenceDigests(datas[s], P)
    assert.ok(Buffer.from(out.sha256.subarray(s * 32, s * 32 + 32)).equals(want.sha256), `sha256 of slot ${s}`)
    assert.ok(Buffer.from(out.pieces.subarray(out.pieceAt[s], out.pieceAt[s + 1])).equals(want.pieces), `pieces of slot ${s}`)
    if (jobs.tail[j] === 1 && want.tail) assert.ok(Buffer.from(out.tails.subarray(s * 20, s * 20 + 20)).equals(want.tail), `tail of slot ${s}`)
  }
}

test('hashTable: every file hashed into its slot, on worker threads and inline', async () => {
  const dir = tempDir()
  // 1,500 files start the workers (over 1,000); 300 are hashed on this thread.
  for (const count of [1500, 300]) {
    const { datas, pieceAt, jobs } = makeJobs(join(dir, String(count)), count)
    const out = allocDigests(count, pieceAt)
    let last = { filesDone: 0, bytesDone: 0 }
    await hashTable(jobs, out, P, p => { last = p }, 2)
    check(jobs, datas, out)
    if (count > 1000) assert.equal(last.filesDone, count, 'progress reaches every file')
  }
})

test('hashTable: a file that changed since the walk is refused, naming it', async () => {
  const dir = tempDir()
  const { paths, pieceAt, jobs } = makeJobs(join(dir, 'c'), 1500)
  // Same size, new content and mtime: what the walk saw is not what is read.
  writeFileSync(paths[700], randomBytes(statSync(paths[700]).size))
  const j = jobs.slot.indexOf(700)
  jobs.mtimeMs[j] -= 5000
  await assert.rejects(hashTable(jobs, allocDigests(1500, pieceAt), P, undefined, 2), (err: unknown) =>
    err instanceof DsyncError && err.message.includes(paths[700]))
})
