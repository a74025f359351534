import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runCli } from '../testbed/cli.js'
import { makeHome, tempDir, writePool } from '../testbed/tree.js'

/**
 * The installed form of the CLI (scripts/bundle.mjs: dist/bundle/, package.json's bin) is made
 * of CommonJS files, though the sources are ES modules: what differs between the two forms is
 * checked here on a bundle made from this tree's dist/. Each file is strict, as an ES module
 * is; the folder says its files are CommonJS; the worker threads are found beside the file that
 * starts them (by import.meta.url in the sources, which the bundle defines for CommonJS); the
 * launcher runs a command in its own process or gendsync in a child, and either way a caller
 * sees what tsc's dist/cli/main.js gives.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function bundle(): string {
  const dir = join(tempDir('dsync-bundle-'), 'bundle')
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), dir], { cwd: ROOT, stdio: 'inherit' })
  return dir
}

function run(cli: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli, ...args], { env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: '', DSYNC_LANG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', d => (stdout += d))
    p.stderr.on('data', d => (stderr += d))
    p.on('error', reject)
    p.on('close', code => resolve({ code, stdout, stderr }))
  })
}

test('the bundle: strict CommonJS files that run gendsync on worker threads as dist/ does', async () => {
  const dir = bundle()
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')), { type: 'commonjs' })
  for (const name of readdirSync(dir).filter(n => n.endsWith('.js'))) {
    // The directive only counts as the file's first statement (after a #! line).
    const text = readFileSync(join(dir, name), 'utf8').replace(/^#!.*\n/, '')
    assert.match(text, /^'use strict';/, `${name} is not strict`)
  }
  const cli = join(dir, 'dsync.js')

  // 10,000 files: walked and hashed on worker threads (a tree under 5,000 entries is not).
  const { home, webroot } = makeHome(tempDir('dsync-bundle-'), {})
  const save = join(webroot, 'pool')
  writePool(save, 10_000, 200)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${save}\ndsync=true\n`)
  const first = await run(cli, ['--home', home, '--json', 'gendsync'])
  assert.equal(first.code, 0, first.stderr)
  const gen = JSON.parse(first.stdout) as { infoHash: string; files: number; hashedFiles: number }
  assert.deepEqual([gen.files, gen.hashedFiles], [10_000, 10_000])

  // tsc's dist/ reads the same tree as the same generation.
  const again = await runCli(['--home', home, '--json', 'gendsync'])
  assert.equal(again.code, 0, again.stderr)
  const reread = JSON.parse(again.stdout) as { changed: boolean; infoHash: string }
  assert.deepEqual([reread.changed, reread.infoHash], [false, gen.infoHash])

  // In the launcher's own process (the operator's word on huge pages: no child), and another command.
  const inProcess = await run(cli, ['--home', home, '--json', 'gendsync'], { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' })
  assert.equal(inProcess.code, 0, inProcess.stderr)
  assert.equal((JSON.parse(inProcess.stdout) as { infoHash: string }).infoHash, gen.infoHash)
  const magnet = await run(cli, ['--home', home, 'magnet', 'pool'])
  const direct = await runCli(['--home', home, 'magnet', 'pool'])
  assert.deepEqual([magnet.code, magnet.stdout, magnet.stderr], [direct.code, direct.stdout, direct.stderr])

  // A user's mistake: the same exit code and one line as dist/ gives.
  const missing = join(home, 'no-such-home')
  const bad = await run(cli, ['--home', missing, 'gendsync'])
  const reference = await runCli(['--home', missing, 'gendsync'])
  assert.notEqual(reference.code, 0)
  assert.deepEqual([bad.code, bad.stderr], [reference.code, reference.stderr])
})
