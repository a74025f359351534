import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { rewriteLegacyVerbs } from '../cli/legacy.js'
import { verbOf } from '../cli/verb.js'
import { withHugePages } from '../src/util/huge-pages.js'
import { runCli } from '../testbed/cli.js'
import { environOf, hugeKiB, hugePagesUntestable, TUNABLE } from '../testbed/huge-pages.js'
import { makeHome, tempDir, writePool } from '../testbed/tree.js'

/**
 * The installed form of the CLI (scripts/bundle.mjs: dist/bundle/, package.json's bin) is made
 * of CommonJS files, though the sources are ES modules: what differs between the two forms is
 * checked here on a bundle made from this tree's dist/. Each file is strict, as an ES module
 * is; the folder says its files are CommonJS; the worker threads are found beside the file that
 * starts them (by import.meta.url in the sources, which the bundle defines for CommonJS); the
 * launcher runs a command in its own process or gendsync in a child, and either way a caller
 * sees what tsc's dist/cli/main.js gives. The installed command (package.json's bin, the sh
 * script cli/dsync.sh copied to dsync) finds gendsync where main.js does and execs node on main.js
 * (on gendsync.js, the program with gendsync's command only, for gendsync),
 * for gendsync with the huge-pages tunable and without NODE_EXTRA_CA_CERTS.
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

  // gendsync.js, the program with gendsync's command only: what main.js gives for gendsync (its
  // help, a generation, a mistake), in under half the code; another command fails in one line.
  const only = join(dir, 'gendsync.js')
  const main = join(dir, 'main.js')
  const [onlyCode, mainCode] = [statSync(join(dir, 'gendsync.code.js')).size, statSync(join(dir, 'main.code.js')).size]
  assert.ok(onlyCode * 2 < mainCode, `gendsync.code.js ${onlyCode} B against main.code.js ${mainCode} B`)
  for (const args of [['--home', home, 'gendsync', '--help'], ['--home', home, '--json', 'gendsync'], ['--home', missing, '-gendsync']]) {
    const a = await run(only, args)
    const b = await run(main, args)
    assert.deepEqual([a.code, a.stdout.replace(/"seconds":[0-9.e-]+|"maxRssBytes":\d+/g, ''), a.stderr], [b.code, b.stdout.replace(/"seconds":[0-9.e-]+|"maxRssBytes":\d+/g, ''), b.stderr], `gendsync.js ${args.join(' ')}`)
  }
  const other = await run(only, ['--home', home, 'magnet', 'pool'])
  assert.notEqual(other.code, 0)
  assert.match(other.stderr, /^dsync: .*magnet\.js is not in this file .*\n$/)
})

test('main.js and gendsync.js run their programs from the code cache made with the bundle, and never from a cache of another program', async () => {
  const dir = bundle()
  // npm run sets npm_package_version, which --version would print instead of the program's own.
  const debug = { DSYNC_DEBUG_CODE_CACHE: '1', npm_package_version: undefined }
  for (const [name, args] of [['main.js', ['--version']], ['gendsync.js', ['gendsync', '--help']]] as const) {
    const r = await run(join(dir, name), [...args], debug)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, 'code cache: used\n', `${name}: the cache the build made`)
  }
  const version = (await run(join(dir, 'main.js'), ['--version'], { npm_package_version: undefined })).stdout
  assert.match(version, /^\d+\.\d+\.\d+\n$/)

  // The program rebuilt to the same length (all V8 itself checks of the source): its own code
  // runs, not the old program's compiled functions kept in the cache.
  const program = join(dir, 'main.code.js')
  const text = readFileSync(program, 'utf8')
  const old = `.version(process.env.npm_package_version ?? "${version.trim()}")`
  assert.equal(text.split(old).length, 2, `the version's default appears once in main.code.js (${old})`)
  const changed = text.replace(old, old.replace(/\d/g, '7'))
  assert.equal(Buffer.byteLength(changed), Buffer.byteLength(text))
  writeFileSync(program, changed)
  const rebuilt = await run(join(dir, 'main.js'), ['--version'], debug)
  assert.deepEqual([rebuilt.code, rebuilt.stdout, rebuilt.stderr], [0, version.replace(/\d/g, '7'), 'code cache: none for this program\n'])

  // A cache cut short or missing: the program compiles as it would without one.
  writeFileSync(program, text)
  const cache = join(dir, 'main.code.cache')
  const whole = readFileSync(cache)
  writeFileSync(cache, whole.subarray(0, whole.length >> 1))
  const cut = await run(join(dir, 'main.js'), ['--version'], debug)
  assert.deepEqual([cut.code, cut.stdout, cut.stderr], [0, version, 'code cache: refused by V8\n'])
  rmSync(cache)
  const none = await run(join(dir, 'main.js'), ['--version'], debug)
  assert.deepEqual([none.code, none.stdout, none.stderr], [0, version, 'code cache: none for this program\n'])
})

/** Where Debian keeps its CA bundle; a missing file only makes Node warn. */
const SYSTEM_CERTS = '/etc/ssl/certs/ca-certificates.crt'

/** The verbs `dsync --help` lists (main.js's commands), commander's `help` left out. */
async function helpVerbs(): Promise<string[]> {
  const help = await runCli(['--help'])
  const section = help.stdout.slice(help.stdout.indexOf('Commands:'))
  const verbs = [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map(m => m[1]).filter(v => v !== 'help')
  assert.ok(verbs.includes('gendsync') && verbs.includes('sync') && verbs.length > 10, `verbs read from --help: ${verbs.join(' ')}`)
  return verbs
}

test('the installed command finds gendsync where main.js does; only gendsync gets the tunable and loses the extra certificates', async () => {
  const dir = bundle()
  const bin = join(dir, 'dsync')
  // npm links the bin from another folder: the script must find main.js beside its real self.
  const links = tempDir('dsync-bin-link-')
  symlinkSync(bin, join(links, 'dsync'))
  // A `node` first on PATH that prints what it was given: the environment and the arguments.
  const fake = tempDir('dsync-fake-node-')
  writeFileSync(join(fake, 'node'), '#!/bin/sh\nprintf \'%s\\n\' "${GLIBC_TUNABLES-(unset)}" "${NODE_EXTRA_CA_CERTS-(unset)}" "$@"\n', { mode: 0o755 })
  let thp = ''
  try {
    thp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8')
  } catch {
    // no THP: the tunable is never added
  }
  const verbs = await helpVerbs()
  const lines: string[][] = [
    [], ['gendsync'], ['-gendsync'], ['--json', '-gendsync', 'pool'], ['--home', '/h', 'gendsync', '--changed', 'a b', ''],
    ['--home', 'gendsync', 'magnet', 'pool'], ['--home=/h', 'gendsync'], ['-h', 'gendsync'], ['-h', '-gendsync'], ['gendsync', '--help'],
    ['--version'], ['-V', 'gendsync'], ['magnet', 'gendsync'], ['-nolog'], ['--force', '-gendsync'], ['', 'gendsync'], ['-x', 'gendsync'],
    ...verbs.flatMap(v => [[v, 'gendsync'], [`-${v}`, '-gendsync'], [`-${v}`, 'gendsync']]),
  ]
  const tunableCases: (string | undefined)[] = [undefined, '', `${TUNABLE}=0`, 'glibc.malloc.check=0', `glibc.malloc.check=0:${TUNABLE}=0`, `${TUNABLE}x=1`]
  // Every command line with no GLIBC_TUNABLES, and the operator's own values with two of them.
  const cases: [string | undefined, string[]][] = [...lines.map((args): [undefined, string[]] => [undefined, args]), ...tunableCases.flatMap((t): [string | undefined, string[]][] => [[t, ['gendsync']], [t, ['magnet', 'pool']]])]
  for (const [tunables, args] of cases) {
    const { GLIBC_TUNABLES: _, ...rest } = process.env
    const env: NodeJS.ProcessEnv = { ...rest, PATH: `${fake}:${process.env.PATH}`, NODE_EXTRA_CA_CERTS: SYSTEM_CERTS, ...(tunables === undefined ? {} : { GLIBC_TUNABLES: tunables }) }
    const out = execFileSync(join(links, 'dsync'), args, { env, encoding: 'utf8' }).split('\n').slice(0, -1)
    const gendsync = verbOf(rewriteLegacyVerbs(args, verbs)) === 'gendsync'
    const wanted = gendsync && thp.includes('[madvise]') ? withHugePages(env).GLIBC_TUNABLES : tunables
    const what = `dsync ${JSON.stringify(args)} with GLIBC_TUNABLES=${tunables}`
    assert.deepEqual(out.slice(2), [join(dir, gendsync ? 'gendsync.js' : 'main.js'), ...args], `${what}: node ran ${gendsync ? 'gendsync.js' : 'main.js'} with the same arguments`)
    assert.equal(out[0], wanted ?? '(unset)', `${what}: GLIBC_TUNABLES (gendsync: ${gendsync})`)
    assert.equal(out[1], gendsync ? '(unset)' : SYSTEM_CERTS, `${what}: NODE_EXTRA_CA_CERTS (gendsync: ${gendsync})`)
  }
})

test('the installed command is gendsync\'s own process: huge pages, its exit code and its signal', { skip: hugePagesUntestable() }, async () => {
  const dir = bundle()
  const bin = join(dir, 'dsync')
  const { home, webroot } = makeHome(tempDir('dsync-bundle-'), {})
  const save = join(webroot, 'pool')
  writePool(save, 10_000, 200)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${save}\ndsync=true\n`)
  const { GLIBC_TUNABLES: _, ...plain } = process.env
  /** The bin run as a user runs it; `onExec` once the process the caller started is node running gendsync.js. */
  const runBin = (args: string[], onExec?: (pid: number) => void) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; tunables?: string; extraCerts?: boolean; maxHugeKiB: number }>((resolve, reject) => {
      const p = spawn(bin, args, { env: { ...plain, LANG: 'C.UTF-8', LC_ALL: '', DSYNC_LANG: '', NODE_EXTRA_CA_CERTS: SYSTEM_CERTS }, stdio: ['ignore', 'pipe', 'pipe'] })
      const r = { code: null as number | null, signal: null as NodeJS.Signals | null, stdout: '', stderr: '', tunables: undefined as string | undefined, extraCerts: undefined as boolean | undefined, maxHugeKiB: 0 }
      p.stdout.on('data', d => (r.stdout += d))
      p.stderr.on('data', d => (r.stderr += d))
      const poll = setInterval(() => {
        try {
          if (r.tunables === undefined && readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes('gendsync.js')) {
            const env = environOf(p.pid!)
            r.tunables = env.GLIBC_TUNABLES ?? ''
            r.extraCerts = env.NODE_EXTRA_CA_CERTS !== undefined
            onExec?.(p.pid!)
          }
        } catch {
          // ended already
        }
        r.maxHugeKiB = Math.max(r.maxHugeKiB, hugeKiB(p.pid!))
      }, 3)
      p.on('error', reject)
      p.on('close', (code, signal) => {
        clearInterval(poll)
        resolve({ ...r, code, signal })
      })
    })

  const first = await runBin(['--home', home, '--json', 'gendsync'])
  assert.equal(first.code, 0, first.stderr)
  assert.equal(first.tunables, `${TUNABLE}=1`, 'the process started was node on gendsync.js, with the tunable')
  assert.equal(first.extraCerts, false, 'without NODE_EXTRA_CA_CERTS')
  assert.ok(first.maxHugeKiB >= 2048, `its memory had huge pages (at most ${first.maxHugeKiB} kB seen)`)
  const gen = JSON.parse(first.stdout) as { infoHash: string; files: number }
  assert.equal(gen.files, 10_000)
  const again = await runCli(['--home', home, '--json', 'gendsync'])
  assert.equal(again.code, 0, again.stderr)
  assert.deepEqual([(JSON.parse(again.stdout) as { changed: boolean }).changed, (JSON.parse(again.stdout) as { infoHash: string }).infoHash], [false, gen.infoHash])

  // A user's mistake: the exit code and the one line dist/ gives.
  const missing = join(home, 'no-such-home')
  const bad = await runBin(['--home', missing, 'gendsync'])
  const reference = await runCli(['--home', missing, 'gendsync'])
  assert.notEqual(reference.code, 0)
  assert.deepEqual([bad.code, bad.stderr], [reference.code, reference.stderr])

  // A signal to the process the caller started reaches gendsync itself: a full run stopped at its start writes nothing.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    rmSync(join(save, '.dsync'), { recursive: true, force: true })
    const killed = await runBin(['--home', home, 'gendsync'], pid => process.kill(pid, signal))
    assert.equal(killed.signal, signal, `ended by ${signal} (code ${killed.code}, ${killed.stderr})`)
    assert.equal(existsSync(join(save, '.dsync', 'data.dsync')), false, `gendsync went on after ${signal}`)
  }
})
