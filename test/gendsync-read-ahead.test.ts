import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { repoFiles } from '../src/manifest/paths.js'
import { generateRepo, type GenerateOptions } from '../src/publish/generate.js'
import { readAheadGeneration } from '../src/publish/read-ahead.js'
import { tempDir } from '../testbed/tree.js'

const OLD = new Date('2024-01-02T03:04:05Z')

function write(save: string, path: string, text: string, mtime = OLD): void {
  writeFileSync(join(save, path), text)
  utimesSync(join(save, path), mtime, mtime)
}

/**
 * The CLI reads the previous generation ahead of gendsync's lock (src/publish/read-ahead.ts).
 * A generation committed between that read and the lock makes those bytes stale: they must
 * not be used. Here the change in between keeps the file's size, so a run that did start from
 * the stale data.dsync would find nothing wrong with it and publish the file's old line.
 */
test('gendsync --changed does not use a previous generation read ahead when another was committed since', async () => {
  const save = join(tempDir(), 'repo')
  mkdirSync(join(save, 'pool'), { recursive: true })
  for (let i = 0; i < 50; i++) write(save, `pool/f${i}.deb`, `file ${i}\n`.repeat(1 + (i % 5)))
  const opts: GenerateOptions = { name: 'repo', save, trackers: [] }
  await generateRepo(opts)
  const stale = readAheadGeneration(save, 'repo')
  await stale

  const later = new Date(OLD.getTime() + 3_600_000)
  write(save, 'pool/f1.deb', 'FILE 1\nFILE 1\n', later)
  assert.equal((await generateRepo({ ...opts, changed: ['pool/f1.deb'] })).hashedFiles, 1)
  write(save, 'pool/f2.deb', 'another\n', later)
  const hinted = await generateRepo({ ...opts, changed: ['pool/f2.deb'], readAhead: stale })
  assert.equal(hinted.hashedFiles, 1, 'the hint was used')
  const list = readFileSync(repoFiles(save, 'repo').manifest)

  // A full run of the same tree writes the same list: both changes are in it.
  const full = await generateRepo(opts)
  assert.equal(full.changed, false, 'the hinted run started from the stale list')
  assert.ok(readFileSync(repoFiles(save, 'repo').manifest).equals(list))

  // Read ahead with nothing committed since, the same bytes are used and give the same list.
  write(save, 'pool/f3.deb', 'third\n', later)
  const fresh = readAheadGeneration(save, 'repo')
  assert.equal((await generateRepo({ ...opts, changed: ['pool/f3.deb'], readAhead: fresh })).hashedFiles, 1)
  const afterFresh = readFileSync(repoFiles(save, 'repo').manifest)
  assert.equal((await generateRepo(opts)).changed, false)
  assert.ok(readFileSync(repoFiles(save, 'repo').manifest).equals(afterFresh))
})

/**
 * The read-ahead takes data.dsync before the lock and before its END checksum is checked; the
 * hinted run must still check it before editing anything. A list damaged on disk (one digit of
 * an unchanged file's mtime, same size: it still parses) must not be edited all the same: the
 * run falls back to a full walk, which writes the list the tree gives.
 */
test('gendsync --changed with the read-ahead does not edit a previous data.dsync whose checksum fails', async () => {
  const save = join(tempDir(), 'repo')
  mkdirSync(join(save, 'pool'), { recursive: true })
  for (let i = 0; i < 50; i++) write(save, `pool/f${i}.deb`, `file ${i}\n`.repeat(1 + (i % 5)))
  const warnings: string[] = []
  const opts: GenerateOptions = { name: 'repo', save, trackers: [], onWarning: w => warnings.push(w) }
  await generateRepo(opts)
  const good = readFileSync(repoFiles(save, 'repo').manifest)
  const line = good.indexOf(`\tpool/f7.deb\n`)
  const mtimeAt = good.lastIndexOf(String(OLD.getTime() / 1000), line)
  assert.ok(mtimeAt > 0)
  const damaged = Buffer.from(good)
  damaged[mtimeAt] = damaged[mtimeAt] === 0x31 ? 0x32 : 0x31
  writeFileSync(repoFiles(save, 'repo').manifest, damaged)

  write(save, 'pool/f2.deb', 'another\n', new Date(OLD.getTime() + 3_600_000))
  const hinted = await generateRepo({ ...opts, changed: ['pool/f2.deb'], readAhead: readAheadGeneration(save, 'repo') })
  assert.match(warnings.join('\n'), /no readable previous data\.dsync/)
  assert.equal(hinted.changed, true)
  // A full run of the same tree finds the list it would write (the damaged mtime is not in it).
  assert.equal((await generateRepo(opts)).changed, false, 'the hinted run edited the damaged list')
})
