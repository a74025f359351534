import assert from 'node:assert/strict'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { generateRepo } from '../src/publish/generate.js'
import { runCli } from '../testbed/cli.js'
import { OLD_MTIME, tempDir } from '../testbed/tree.js'

/**
 * A full gendsync run by a caller that owns the working directory (the CLI: `ownsCwd`) walks and
 * hashes from inside the repository, its workers opening relative paths (src/publish/repo-cwd.ts).
 * What must hold: the same outputs as with absolute paths, and the working directory put back.
 * Seen failing with the directory not put back, and with the run not entering the repository
 * (its relative paths then name nothing: ENOENT).
 */

/**
 * Past the entries the walk lists on the main thread (5,000) and the files hashed there (1,000),
 * so that worker threads both walk and hash from inside the repository.
 */
function bigTree(root: string): void {
  for (let i = 0; i < 6500; i++) {
    const dir = join(root, 'pool', 'main', `p${i % 29}`, `pkg${i % 311}`)
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `pkg${i}_1.0_amd64.deb`)
    writeFileSync(file, Buffer.alloc(100 + (i % 700), i % 251))
    utimesSync(file, OLD_MTIME, OLD_MTIME)
  }
}

test('a full gendsync that owns the working directory gives the same outputs and puts the directory back', async () => {
  const root = join(tempDir(), 'repo')
  bigTree(root)
  const dsync = join(root, '.dsync')
  const opts = { name: 'repo', save: root, trackers: [], threads: 2 }
  const before = process.cwd()
  await generateRepo(opts)
  const absolute = join(tempDir(), 'absolute')
  cpSync(dsync, absolute, { recursive: true })
  rmSync(dsync, { recursive: true })
  const r = await generateRepo({ ...opts, ownsCwd: true })
  assert.equal(process.cwd(), before)
  assert.equal(r.hashedFiles, 6500)
  // The record and generation files carry a time; the rest is a function of the tree.
  for (const f of ['data.dsync', 'repo.torrent', 'repo.magnet', 'hashcache']) {
    assert.ok(readFileSync(join(dsync, f)).equals(readFileSync(join(absolute, f))), f)
  }
})

test('the CLI keeps absolute paths under a diagnostic option that writes into the working directory', async () => {
  // --perf-basic-prof makes each worker's isolate write a log into the working directory: inside
  // the repository, the next gendsync would publish them (seen before the guard in repo-cwd.ts).
  const base = tempDir()
  const root = join(base, 'web', 'repo')
  bigTree(root)
  mkdirSync(join(base, 'home', 'repos'), { recursive: true })
  writeFileSync(join(base, 'home', 'xync.conf'), `webroot=${join(base, 'web')}\n`)
  writeFileSync(join(base, 'home', 'repos', 'repo.conf'), `repo=repo\nsave=${root}\ndsync=true\n`)
  const r = await runCli(['--home', join(base, 'home'), '--json', 'gendsync'], { cwd: base, env: { NODE_OPTIONS: '--perf-basic-prof' } })
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(readdirSync(root).sort(), ['.dsync', 'pool'])
})
