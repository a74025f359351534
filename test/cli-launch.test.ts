import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runCli } from '../testbed/cli.js'
import { childrenOf, environOf, hugeKiB, hugePagesUntestable, running, TUNABLE } from '../testbed/huge-pages.js'
import { makeHome, tempDir, writePool } from '../testbed/tree.js'

/**
 * The installed command's entry (cli/launch.ts; the bundle's dsync.js is built from it) runs
 * `gendsync` in a child started with glibc malloc in huge pages (src/util/huge-pages.ts), and
 * a caller sees of it what it would see of gendsync run in one process: the output, the exit
 * code and one-line error, the ending signal; a SIGKILL of the launcher ends the child too
 * (src/util/parent-watch.ts), so nothing goes on writing the repository behind a command seen
 * to die. Real processes on a 10,000-file pool, the launcher's children read from /proc while
 * it runs.
 */
const LAUNCH = fileURLToPath(new URL('../cli/launch.js', import.meta.url))
/** Where Debian keeps its CA bundle; a missing file only makes Node warn. */
const SYSTEM_CERTS = '/etc/ssl/certs/ca-certificates.crt'

interface Watched {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  children: number[]
  /** The first child's GLIBC_TUNABLES as it was started, and the most huge pages seen in it. */
  tunables?: string
  /** Whether the first child was started with NODE_EXTRA_CA_CERTS in its environment. */
  extraCerts?: boolean
  maxHugeKiB: number
}

/**
 * Runs the launcher, polling its children every few ms until it ends; `onChild` is called once
 * with the first child's pid (to signal the launcher while it works).
 */
function launch(args: string[], env: NodeJS.ProcessEnv = {}, onChild?: (launcher: number, child: number) => void): Promise<Watched> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [LAUNCH, ...args], { env: { ...process.env, LANG: 'C.UTF-8', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const w: Watched = { code: null, signal: null, stdout: '', stderr: '', children: [], maxHugeKiB: 0 }
    p.stdout.on('data', d => (w.stdout += d))
    p.stderr.on('data', d => (w.stderr += d))
    const poll = setInterval(() => {
      for (const c of childrenOf(p.pid!)) {
        // Until its exec a child is a copy of the launcher, with the launcher's environment.
        if (w.children.includes(c) || !cmdlineOf(c).includes('main.js')) continue
        w.children.push(c)
        try {
          const env = environOf(c)
          w.tunables ??= env.GLIBC_TUNABLES ?? ''
          w.extraCerts ??= env.NODE_EXTRA_CA_CERTS !== undefined
        } catch {
          // ended already
        }
        if (w.children.length === 1) onChild?.(p.pid!, c)
      }
      if (w.children.length > 0) w.maxHugeKiB = Math.max(w.maxHugeKiB, hugeKiB(w.children[0]))
    }, 3)
    p.on('error', reject)
    p.on('close', (code, signal) => {
      clearInterval(poll)
      resolve({ ...w, code, signal })
    })
  })
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return ''
  }
}

function pool(): { home: string; save: string } {
  const { home, webroot } = makeHome(tempDir('dsync-launch-'), {})
  const save = join(webroot, 'pool')
  writePool(save, 10_000, 200)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${save}\ndsync=true\n`)
  return { home, save }
}

const until = async (what: string, ok: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`)
    await new Promise(r => setTimeout(r, 10))
  }
}

test('gendsync through the launcher runs in a child with huge pages; output and errors as in one process', { skip: hugePagesUntestable() }, async () => {
  const { home } = pool()
  const { GLIBC_TUNABLES: _, ...plain } = process.env
  // A system's CA bundle for extra certificates (as on the project's VM), which gendsync never uses.
  const r = await launch(['--home', home, '--json', 'gendsync'], { ...plain, GLIBC_TUNABLES: '', NODE_EXTRA_CA_CERTS: SYSTEM_CERTS })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.children.length, 1, 'one child ran gendsync')
  assert.equal(r.tunables, `${TUNABLE}=1`, 'the child was started with the tunable')
  assert.equal(r.extraCerts, false, 'the child was started without NODE_EXTRA_CA_CERTS (Node loads them at every start)')
  assert.ok(r.maxHugeKiB >= 2048, `the child's memory had huge pages (at most ${r.maxHugeKiB} kB seen)`)
  const gen = JSON.parse(r.stdout) as { infoHash: string; files: number }
  assert.equal(gen.files, 10_000)

  // The same generation read again in one process (main.js): nothing changed, the same infohash.
  const again = await runCli(['--home', home, '--json', 'gendsync'])
  assert.equal(again.code, 0, again.stderr)
  assert.equal((JSON.parse(again.stdout) as { infoHash: string }).infoHash, gen.infoHash)

  // A user's mistake: the same exit code and one line as gendsync in one process.
  const missing = join(home, 'no-such-home')
  const bad = await launch(['--home', missing, 'gendsync'])
  const direct = await runCli(['--home', missing, 'gendsync'])
  assert.notEqual(direct.code, 0)
  assert.deepEqual([bad.code, bad.stderr], [direct.code, direct.stderr])

  // The operator's word on the tunable wins: no child, gendsync in the launcher's own process.
  const off = await launch(['--home', home, '--json', 'gendsync'], { GLIBC_TUNABLES: `${TUNABLE}=0` })
  assert.equal(off.code, 0, off.stderr)
  assert.deepEqual(off.children, [])
})

test('a SIGKILL or a SIGTERM of the launcher ends gendsync\'s child', { skip: hugePagesUntestable() }, async () => {
  const { home, save } = pool()
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    rmSync(join(save, '.dsync'), { recursive: true, force: true }) // a full run: long enough to be killed in
    let child = 0
    const r = await launch(['--home', home, 'gendsync'], {}, (launcher, c) => {
      child = c
      process.kill(launcher, signal)
    })
    assert.equal(r.signal, signal, `the launcher ended by ${signal} (code ${r.code}, ${r.stderr})`)
    assert.ok(child > 0)
    await until(`gendsync's child ${child} ends after the launcher's ${signal}`, () => !running(child), 10_000)
    // Killed within ms of its start, it cannot have finished: a child left running would have.
    assert.equal(existsSync(join(save, '.dsync', 'data.dsync')), false, `gendsync went on after the launcher's ${signal}`)
  }
})
