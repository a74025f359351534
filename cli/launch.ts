#!/usr/bin/env node
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { hugePagesWouldHelp, withHugePages } from '../src/util/huge-pages.js'
import { PARENT_FD_VARIABLE } from '../src/util/parent-watch.js'
import { rewriteLegacyVerbs } from './legacy.js'
import { verbOf } from './verb.js'

/**
 * `node dist/bundle/dsync.js` (bundled from this file; the program itself is ./main.js beside
 * it): the installed command's entry up to session 20, and still what the Docker image's
 * entrypoint, the tests and the benches run. The installed command (package.json's bin) is now
 * cli/dsync.sh, which does the same for gendsync with no Node process of its own: it execs node
 * on main.js with the environment below. Here every command runs in this process, except
 * `gendsync` where glibc's malloc can be given huge pages: that takes a process started with
 * the tunable in its environment (src/util/huge-pages.ts), so gendsync then runs in a child
 * and this process only passes on what happens to it. A change-hinted gendsync at 200k files
 * reads and writes ~30 MB lists and shards into fresh memory, and on the project's VM that
 * cost more than the child's start: 0.77x (rewrites) and 0.90x (uploads) of the wall time,
 * the child's start included (docs/ARCHITECTURE.md, "Huge pages: the host and gendsync").
 *
 * What a caller sees is what it would see of gendsync run here: the same output (stdio
 * inherited), the same exit code, the same ending signal (re-raised here); SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT sent to this process are passed on; if this process is SIGKILLed the
 * child kills itself (src/util/parent-watch.ts).
 */
const MAIN = new URL('./main.js', import.meta.url)
/** The bundle's program with gendsync's command only (scripts/bundle.mjs); tsc's dist/ has none. */
const GENDSYNC = new URL('./gendsync.js', import.meta.url)
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']

const args = process.argv.slice(2)
if (verbOf(rewriteLegacyVerbs(args, ['gendsync'])) === 'gendsync' && hugePagesWouldHelp(process.env)) runChild()
else loadMain()

/**
 * main.js in this process. The bundle (scripts/bundle.mjs) is CommonJS, where `require` loads it
 * without Node's ES module loader; tsc's dist/ is ES modules (no `require` in scope), imported.
 */
function loadMain(): void {
  if (typeof require === 'function') require(fileURLToPath(MAIN))
  else void import(MAIN.href)
}

/**
 * gendsync's environment: the huge-pages tunable added, the pipe it watches named, and
 * NODE_EXTRA_CA_CERTS left out. Node 20 loads the certificates that variable names at every
 * process start, before any JavaScript runs (~60 ms of CPU for Debian's bundle of ~140 on the
 * project's VM, measured with `node -e 0`), and gendsync opens no connection at all: the child
 * would pay it for nothing on every run.
 */
function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _, ...rest } = withHugePages(env)
  return { ...rest, [PARENT_FD_VARIABLE]: '3' }
}

function runChild(): void {
  const program = existsSync(GENDSYNC) ? GENDSYNC : MAIN
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(program), ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: childEnv(process.env),
  })
  for (const signal of FORWARDED) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1)
    for (const s of FORWARDED) process.removeAllListeners(s)
    process.kill(process.pid, signal)
  })
  child.on('error', err => {
    process.stderr.write(`dsync: cannot start gendsync (${err.message})\n`)
    process.exit(1)
  })
}
