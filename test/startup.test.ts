import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost } from '../testbed/host.js'
import { tempDir } from '../testbed/tree.js'

/**
 * Start-up cost (docs/SCALE.md, "The no-change check at 50,000 .debs"): a process that loads
 * the whole client spends more time loading modules than a no-change check spends checking.
 * A no-change pull loads the resolve stage and the check, not the routes, the swarm, the
 * apply or gendsync; a command that does not pull loads no part of the client. Real CLI
 * processes against a real host on 127.0.15.2; what each loads is logged by Node's module
 * hooks (testbed/module-log.ts).
 */
const ADDR = '127.0.15.2'
const MODULE_LOG = fileURLToPath(new URL('../testbed/module-log.js', import.meta.url))
const DIST = fileURLToPath(new URL('..', import.meta.url))

/** What the command loaded from dsync itself, as paths under dist/ (src/sync/pull.js ...). */
async function loadedBy(args: string[]): Promise<{ out: string; modules: string[] }> {
  const log = join(tempDir('dsync-modules-'), 'modules.txt')
  const r = await runCli(args, { env: { NODE_OPTIONS: `--import ${MODULE_LOG}`, DSYNC_TEST_MODULE_LOG: log } })
  assert.equal(r.code, 0, r.stderr)
  const modules = readFileSync(log, 'utf8').split('\n').filter(u => u.startsWith('file://'))
    .map(u => fileURLToPath(u)).filter(p => p.startsWith(DIST)).map(p => p.slice(DIST.length))
  rmSync(log)
  return { out: r.stdout, modules }
}

/** Modules of the update and bootstrap machinery, and of the commands a pull is not. */
const NOT_FOR_A_CHECK = [
  'src/sync/delta-route.js', 'src/sync/full-route.js', 'src/sync/execute.js', 'src/sync/plan.js', 'src/sync/apply.js',
  'src/sync/transfer.js', 'src/sync/metadata.js', 'src/swarm/swarm.js', 'src/manifest/format.js',
  'src/publish/generate.js', 'src/manifest/scan.js', 'src/host/host.js', 'src/demo/demo.js', 'src/manifest/verify.js',
]

test('a no-change pull loads the resolve stage and the check only; other commands load no part of the client', async () => {
  const files: Record<string, string> = { 'dists/stable/Release': 'Release 1\n' }
  for (let i = 0; i < 12; i++) files[`pool/main/p${i % 3}/pkg${i}.deb`] = `package ${i} `.repeat(500 + i)
  const host = await prepareHost(ADDR, { deb: files })
  await startHost(host, ['deb'])
  const dest = join(tempDir('dsync-startup-'), 'deb')
  const pull = ['--json', 'pull', `dtp://${ADDR}:${HOST_PORT}/deb`, dest]

  const first = await loadedBy(pull)
  // The bootstrap did load the client: the log sees what the process loads, late imports included.
  for (const m of ['src/sync/full-route.js', 'src/sync/execute.js', 'src/swarm/swarm.js']) assert.ok(first.modules.includes(m), `bootstrap loaded ${m}`)

  const again = await loadedBy(pull)
  const summary = JSON.parse(again.out.trim().split('\n').pop()!) as { upToDate: boolean; bytesReceived: number }
  assert.equal(summary.upToDate, true)
  assert.equal(summary.bytesReceived, 0)
  assert.ok(again.modules.includes('src/sync/no-change.js'), 'the no-change check ran')
  assert.deepEqual(again.modules.filter(m => NOT_FOR_A_CHECK.includes(m)), [], 'a no-change pull loaded the update machinery')

  const version = await loadedBy(['--version'])
  assert.deepEqual(version.modules.filter(m => m.startsWith('src/sync/') || NOT_FOR_A_CHECK.includes(m)), [], '--version loaded part of the client')
})

test('a command loads its own command module and no other command\'s; help lists every command', async () => {
  const commands = (modules: string[]) => modules.filter(m => m.startsWith('cli/commands/')).sort()
  const gendsync = await loadedBy(['gendsync', '--help'])
  assert.deepEqual(commands(gendsync.modules), ['cli/commands/gendsync.js'])
  // A legacy spelling names its command the same way.
  const legacy = await loadedBy(['-key', '--help'])
  assert.deepEqual(commands(legacy.modules), ['cli/commands/key.js'])
  const help = await loadedBy(['--help'])
  assert.equal(commands(help.modules).length, 11, 'help loads every command module')
  for (const verb of ['init', 'gendsync', 'pull', 'diff', 'stop-service', 'cleanlog', 'tracker', 'demo']) assert.match(help.out, new RegExp(`\\n  ${verb} `))
})
