import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { summarizeCpuProfile } from './lib/cpuprofile.js'
import { cpuSnapshot, foreignCores, machineLoad, median, processCpuSeconds, timeChild, timeChildOk } from './lib/measure.js'
import { fmtMiB, fmtSeconds, markdownTable } from './lib/table.js'
import { changeFiles, ensureTree, type GeneratedTree, type TreeSpec } from './lib/tree.js'
import { eachArg } from './lib/args.js'
import { startRsyncd } from './lib/rsyncd.js'
import { moveToTrash, removeInBackground } from './lib/trash.js'
import { readPid } from '../src/util/process.js'
import { isBundleCli, withRunBundle } from './lib/client-bundle.js'

/**
 * `dsync pull` from three DTP hosts against `rsync -a` from one rsync daemon, on loopback,
 * on the same generated trees, in one run, for each dataset (`small`: 200,000 files of
 * 100-3,000 B; `mirror`: 20,000 files, 1 GiB):
 *   bootstrap (empty DEST), incremental after 1% of files change upstream, no-change;
 * then one profiled bootstrap (node --cpu-prof on the client) and where its time goes.
 *
 *   npm run bench -- sync [--dir /tmp/dsync-bench-sync] [--fresh] [--runs 2] [--cli PATH/cli/main.js | --modules]
 *                         [--client-cli PATH/cli/main.js] [--phases bootstrap,incremental,nochange,profile]
 *                         [--datasets small,mirror] [--retries 2] [--net 127.0.6]
 *                         [--base-cli PATH/cli/main.js [--base-hosts]] [--host-profile] [--files N] [--dest-dir DIR]
 *
 * The hosts seed the tree in place (read-only): three homes whose repo save= is the same
 * folder, one gendsync. The rsync daemon serves the same folder minus .dsync/. The page
 * cache is warmed first (every source file read once), so both sides are measured reading
 * from memory. --client-cli runs another build of the client only (a scratch copy of dist/
 * with a node_modules symlink and {"type":"module"} package.json beside it), against the
 * same hosts, to measure a proposed change. --base-cli adds a bootstrap of another client build
 * beside each dsync bootstrap (same hosts, alternating), for a before/after in one run.
 * --base-hosts also starts three hosts of the --base-cli build (NET.5-7, same tree) for those
 * bootstraps: the hosts' CPU of both builds in one run too (their figures are per host set).
 * --dest-dir puts both DESTs (and their set-aside trash) under DIR/<dataset>/ instead: a tmpfs
 * there (/dev/shm) takes the disk's file-creation kernel time out of a comparison of client
 * builds (on this ext4 without a journal it swung a build's client CPU 4.4-10.3 s, h12c9).
 * The client and hosts run what users install, the bundle (bench/lib/client-bundle.ts: made from
 * this tree's dist/ for the run), unless --cli names a build or --modules asks for tsc's
 * dist/cli/main.js (what this bench ran up to session 19). A --base-cli of the other form is
 * warned about: the forms differ in start-up, so such a pair is not like with like.
 */
const DEFAULT_CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SOCKET_BYTES = fileURLToPath(new URL('./lib/socket-bytes.js', import.meta.url))
const REPO = 'bench'
const PORT = 47921
/** Hosts listen on NET.2-4, the rsync daemon on NET.9 (--net: two runs side by side need two nets). */
const DEFAULT_NET = '127.0.6'
const RSYNC_PORT = 47931
const GIB = 1 << 30
/** A measurement taken while other processes kept more than this many cores busy is retaken. */
const FOREIGN_LIMIT = 0.35
const RETRIES = 2
/** statfs's f_type of a tmpfs (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994

const DATASETS: Record<string, TreeSpec> = {
  /** Many tiny files (100-3,000 B), where the cost per file is everything. */
  small: { name: 'small-200k', files: 200_000, medianBytes: 1200, sigma: 0.7, minBytes: 100, maxBytes: 3000, seed: 21 },
  /** The gendsync benchmark's mirror-20k shape: most files tens of KB, a long tail into MBs, 1 GiB. */
  mirror: { name: 'mirror-20k', files: 20_000, medianBytes: 16 << 10, sigma: 1.6, minBytes: 200, maxBytes: 64 << 20, totalBytes: GIB, seed: 20 },
}

/** The dataset with `files` files instead (its total bytes scaled alike); itself when 0. */
function scaled(spec: TreeSpec, files: number): TreeSpec {
  if (!files || files === spec.files) return spec
  const totalBytes = spec.totalBytes && Math.round(spec.totalBytes * files / spec.files)
  return { ...spec, name: `${spec.name.replace(/-.*$/, '')}-${files}`, files, totalBytes }
}

type Phase = 'bootstrap' | 'incremental' | 'nochange' | 'profile'

interface Options {
  dir: string
  fresh: boolean
  runs: number
  /** The build run as hosts and client ('' until run(): the bundle, or DEFAULT_CLI with --modules). */
  cli: string
  modules: boolean
  clientCli: string
  baseCli: string
  /** The --base-cli bootstraps pull from hosts of that build (baseHostAddrs), not from ours. */
  baseHosts: boolean
  baseHostAddrs: string[]
  /** The first host runs under node --cpu-prof; its profile is summarised when it stops. */
  hostProfile: boolean
  phases: Set<Phase>
  datasets: string[]
  /** Retakes of a measurement disturbed by other processes. */
  retries: number
  /** Another file count for every dataset (bytes scaled alike): quick profiling runs. */
  files: number
  /** Where the DESTs go (DIR/<dataset>/dest-*), when not beside the tree. */
  destDir: string
  hosts: string[]
  rsyncAddress: string
}

function parseArgs(args: string[]): Options {
  const o: Options = { dir: '/tmp/dsync-bench-sync', fresh: false, runs: 2, cli: '', modules: false, clientCli: '', baseCli: '', baseHosts: false, baseHostAddrs: [], hostProfile: false, phases: new Set(['bootstrap', 'incremental', 'nochange', 'profile']), datasets: ['small', 'mirror'], retries: RETRIES, files: 0, destDir: '', hosts: [], rsyncAddress: '' }
  let net = DEFAULT_NET
  eachArg(args, (a, value) => {
    if (a === '--dir') o.dir = value()
    else if (a === '--fresh') o.fresh = true
    else if (a === '--runs') o.runs = Number(value())
    else if (a === '--cli') o.cli = value()
    else if (a === '--modules') o.modules = true
    else if (a === '--client-cli') o.clientCli = value()
    else if (a === '--base-cli') o.baseCli = value()
    else if (a === '--base-hosts') o.baseHosts = true
    else if (a === '--host-profile') o.hostProfile = true
    else if (a === '--phases') o.phases = new Set(value().split(',') as Phase[])
    else if (a === '--datasets') o.datasets = value().split(',')
    else if (a === '--retries') o.retries = Number(value())
    else if (a === '--net') net = value()
    else if (a === '--files') o.files = Number(value())
    else if (a === '--dest-dir') o.destDir = value()
    else throw new Error(`unknown argument ${a}`)
  })
  if (!(o.runs >= 1)) throw new Error('--runs must be at least 1')
  for (const d of o.datasets) if (!DATASETS[d]) throw new Error(`unknown dataset ${d} (${Object.keys(DATASETS).join(', ')})`)
  if (o.cli && o.modules) throw new Error('--cli and --modules: one or the other')
  if (o.baseHosts && !o.baseCli) throw new Error('--base-hosts needs --base-cli')
  // The builds take turns at going first (pairs below): an odd count would let one of them go
  // first once more than the other, and going second costs ~5% client CPU.
  if (o.baseCli && o.runs % 2 === 1) {
    console.log(`--runs ${o.runs} with --base-cli: ${o.runs + 1} runs, so each build goes first equally often`)
    o.runs++
  }
  o.hosts = [2, 3, 4].map(n => `${net}.${n}`)
  if (o.baseHosts) o.baseHostAddrs = [5, 6, 7].map(n => `${net}.${n}`)
  o.rsyncAddress = `${net}.9`
  return o
}

interface ClientRun {
  seconds: number
  cpuSeconds: number
  /** The client's user and system CPU seconds apart (cpuSeconds is their sum). */
  userSeconds: number
  sysSeconds: number
  maxRssMiB: number
  /** TCP bytes read by the client (peer wire + HTTP), or rsync's "Total bytes received". */
  wireBytes: number
  /** Server-side CPU seconds (the three hosts, or the rsync daemon and its forks). */
  serverCpuSeconds: number
  foreign: number
  foreignTop: string
  summary?: PullSummary
}

interface PullSummary {
  bytesReceived: number
  bytesPerHost: Record<string, number>
  bytesToFetch: number
  added: number
  changed: number
  removed: number
  filesCopiedLocally: number
  seconds: number
}

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args)
  if (opts.cli || opts.modules) return measure({ ...opts, cli: opts.cli || DEFAULT_CLI, clientCli: opts.clientCli || opts.cli || DEFAULT_CLI })
  await withRunBundle(ROOT, cli => measure({ ...opts, cli, clientCli: opts.clientCli || cli }))
}

async function measure(opts: Options): Promise<void> {
  if (opts.baseCli && isBundleCli(opts.baseCli) !== isBundleCli(opts.clientCli)) {
    process.stderr.write(`[sync] warning: --base-cli ${opts.baseCli} is not the form measured for this build (${isBundleCli(opts.clientCli) ? 'bundle' : 'modules'}): the pair is not like with like\n`)
  }
  const started = performance.now()
  console.log('# sync benchmark: dsync pull from 3 hosts vs rsync -a from one rsync daemon (loopback)\n')
  console.log(`machine: ${availableParallelism()} cores; before start: ${await machineLoad()}\n`)
  console.log(`dsync: ${opts.cli}${opts.cli === DEFAULT_CLI ? ' (tsc output, --modules)' : isBundleCli(opts.cli) ? ' (the installed bundle)' : ''}\n`)
  try {
    for (const name of opts.datasets) await runDataset(opts, name, scaled(DATASETS[name], opts.files))
  } finally {
    // After the last dataset, not after each: ext4 (no journal) skips every recently freed
    // inode one by one when it allocates one, so deleting the 200k dataset's set-aside DESTs
    // (over a million files) while the mirror dataset ran charged its mkdirs and file creations
    // (final5: the mirror profile, beside that rm, spent 2.4 s of 12 s in mkdir; perf of pulls after
    // a big delete: recently_deleted and find_get_block_common on top).
    for (const name of opts.datasets) {
      const dests = join(opts.destDir || opts.dir, name)
      if (existsSync(dests)) removeInBackground(join(dests, 'trash'))
    }
  }
  console.log(`\nafter the runs: ${await machineLoad()}`)
  console.log(`bench total ${((performance.now() - started) / 1000).toFixed(0)} s`)
}

async function runDataset(opts: Options, name: string, spec: TreeSpec): Promise<void> {
  const log = (m: string) => process.stderr.write(`[sync ${name}] ${m}\n`)
  const base = join(opts.dir, name)
  const webroot = join(base, 'web')
  const root = join(webroot, REPO)
  mkdirSync(base, { recursive: true })
  log(`preparing tree under ${root}`)
  const tree = ensureTree(root, spec, opts.fresh, log)
  log(`${tree.created ? `generated in ${fmtSeconds(tree.seconds)} s` : 'reused existing tree'}: ${tree.files.length} files, ${fmtMiB(tree.bytes)} MiB`)

  const homes = opts.hosts.map(addr => makeHostHome(base, webroot, root, addr))
  const cli = (home: string, ...a: string[]) => timeChildOk(process.execPath, [opts.cli, '--home', home, ...a])
  const dests = opts.destDir ? join(opts.destDir, name) : base
  mkdirSync(dests, { recursive: true })
  const baseHomes = opts.baseHostAddrs.map(addr => makeHostHome(base, webroot, root, addr))
  const env: Env = { opts, base, dests, root, tree, homes, hostPids: [], baseHomes, baseHostPids: [], rsyncd: undefined, log }
  const stopAllSync = () => stopEverythingSync(env)
  const onSignal = () => process.exit(130)
  process.on('exit', stopAllSync)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const gen = await cli(homes[0], '--json', 'gendsync')
    log(`gendsync: ${fmtSeconds(gen.seconds)} s`)
    const hostProf = join(base, 'host-prof')
    rmSync(hostProf, { recursive: true, force: true })
    for (const home of homes) {
      await timeChild(process.execPath, [opts.cli, '--home', home, 'stop-service']) // a crashed earlier run's
      if (opts.hostProfile && home === homes[0]) await startProfiledHost(opts.cli, home, hostProf)
      else await cli(home, 'service')
      writeFileSync(join(home, 'dtp', 'list.conf'), `/${REPO}\n`)
      await cli(home, 'reload')
      env.hostPids.push(readPid(join(home, 'run', 'dtp.pid')) ?? NaN)
    }
    log(`hosts up: ${opts.hosts.map((h, i) => `${h}:${PORT} pid ${env.hostPids[i]}`).join(', ')}`)
    for (const home of baseHomes) {
      await timeChild(process.execPath, [opts.baseCli, '--home', home, 'stop-service'])
      await timeChildOk(process.execPath, [opts.baseCli, '--home', home, 'service'])
      writeFileSync(join(home, 'dtp', 'list.conf'), `/${REPO}\n`)
      await timeChildOk(process.execPath, [opts.baseCli, '--home', home, 'reload'])
      env.baseHostPids.push(readPid(join(home, 'run', 'dtp.pid')) ?? NaN)
    }
    if (baseHomes.length > 0) log(`base hosts up: ${opts.baseHostAddrs.map((h, i) => `${h}:${PORT} pid ${env.baseHostPids[i]}`).join(', ')}`)
    env.rsyncd = await startRsyncd(base, root, opts.rsyncAddress, RSYNC_PORT)
    log(`rsync daemon up on ${opts.rsyncAddress}:${RSYNC_PORT} pid ${env.rsyncd.pid}`)

    log('warming the page cache (every source file read once)')
    await timeChildOk('bash', ['-c', 'find . -type f -print0 | xargs -0 cat > /dev/null'], { cwd: root })

    const results = await measureAll(env)
    printTable(env, results)
    if (opts.phases.has('profile')) await profile(env)
  } finally {
    await stopEverything(env)
    process.off('exit', stopAllSync)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (opts.hostProfile) printHostProfile(join(base, 'host-prof'), opts.hosts[0])
}

interface Env {
  opts: Options
  base: string
  /** Where dest-dsync, dest-rsync and their trash are (base unless --dest-dir). */
  dests: string
  root: string
  tree: GeneratedTree
  homes: string[]
  hostPids: number[]
  /** --base-hosts: the base build's hosts (empty without). */
  baseHomes: string[]
  baseHostPids: number[]
  rsyncd: ChildProcess | undefined
  log: (m: string) => void
}

function makeHostHome(base: string, webroot: string, root: string, address: string): string {
  const home = join(base, 'hosts', address)
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${webroot}\nlisten=${address}\nport=${PORT}\n`)
  writeFileSync(join(home, 'repos', `${REPO}.conf`), `repo=${REPO}\nsave=${root}\ndsync=true\n`)
  return home
}

async function stopEverything(env: Env): Promise<void> {
  for (const home of env.homes) await timeChild(process.execPath, [env.opts.cli, '--home', home, 'stop-service'])
  env.hostPids = []
  for (const home of env.baseHomes) await timeChild(process.execPath, [env.opts.baseCli, '--home', home, 'stop-service'])
  env.baseHostPids = []
  if (env.rsyncd && env.rsyncd.exitCode === null) {
    env.rsyncd.kill()
    await new Promise(res => env.rsyncd!.once('exit', res))
  }
  env.rsyncd = undefined
}

function stopEverythingSync(env: Env): void {
  if (env.rsyncd && env.rsyncd.exitCode === null) env.rsyncd.kill()
  if (env.hostPids.length === 0) return
  for (const [cli, home] of [...env.homes.map(h => [env.opts.cli, h]), ...env.baseHomes.map(h => [env.opts.baseCli, h])]) {
    try {
      execFileSync(process.execPath, [cli, '--home', home, 'stop-service'], { stdio: 'ignore', timeout: 40_000 })
    } catch {
      // nothing more we can do on the way out
    }
  }
}

const destDsync = (env: Env) => join(env.dests, 'dest-dsync')
const destRsync = (env: Env) => join(env.dests, 'dest-rsync')

/** /usr/bin/time's report: wall, user, system seconds and peak RSS (KiB). */
function readTime(file: string): { cpu: number; user: number; sys: number; rssMiB: number } {
  const [, user, sys, rss] = readFileSync(file, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
  return { cpu: user + sys, user, sys, rssMiB: rss / 1024 }
}

/** `base`: a --base-cli pull, from the base build's hosts when there are (--base-hosts). */
async function dsyncPull(env: Env, nodeArgs: string[] = [], cli = env.opts.clientCli, base = false): Promise<ClientRun> {
  const hosts = base && env.baseHomes.length > 0 ? env.opts.baseHostAddrs : env.opts.hosts
  const pids = base && env.baseHomes.length > 0 ? env.baseHostPids : env.hostPids
  const timeFile = join(env.base, 'time.out')
  const bytesFile = join(env.base, 'socket-bytes.json')
  rmSync(bytesFile, { force: true })
  const serverBefore = pids.reduce((s, p) => s + processCpuSeconds(p), 0)
  const args = ['-f', '%e %U %S %M', '-o', timeFile, process.execPath, '--import', SOCKET_BYTES, ...nodeArgs, cli,
    '--json', 'pull', `dtp://${hosts[0]}/${REPO}`, destDsync(env), ...hosts.slice(1).flatMap(h => ['--peer', `${h}:${PORT}`])]
  const r = await timeChildOk('/usr/bin/time', args, { env: { ...process.env, DSYNC_BENCH_SOCKET_BYTES: bytesFile } })
  const serverCpu = pids.reduce((s, p) => s + processCpuSeconds(p), 0) - serverBefore
  const line = r.stdout.trim().split('\n').reverse().find(l => l.includes('"event":"summary"'))
  if (!line) throw new Error(`pull printed no summary: ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}`)
  const summary = JSON.parse(line) as PullSummary
  const t = readTime(timeFile)
  const sock = JSON.parse(readFileSync(bytesFile, 'utf8')) as { read: number }
  return { seconds: r.seconds, cpuSeconds: t.cpu, userSeconds: t.user, sysSeconds: t.sys, maxRssMiB: t.rssMiB, wireBytes: sock.read, serverCpuSeconds: serverCpu, foreign: 0, foreignTop: '', summary }
}

async function rsyncPull(env: Env): Promise<ClientRun> {
  const timeFile = join(env.base, 'time.out')
  const serverBefore = processCpuSeconds(env.rsyncd!.pid!)
  const r = await timeChildOk('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, 'rsync', '-a', '--stats',
    `rsync://${env.opts.rsyncAddress}:${RSYNC_PORT}/mod/`, `${destRsync(env)}/`])
  // The daemon reaps its per-connection fork when it ends; give it a moment to be counted.
  await new Promise(res => setTimeout(res, 200))
  const serverCpu = processCpuSeconds(env.rsyncd!.pid!) - serverBefore
  const m = /Total bytes received: ([\d,.]+)/.exec(r.stdout)
  const t = readTime(timeFile)
  return { seconds: r.seconds, cpuSeconds: t.cpu, userSeconds: t.user, sysSeconds: t.sys, maxRssMiB: t.rssMiB, wireBytes: m ? Number(m[1].replace(/[,.]/g, '')) : NaN, serverCpuSeconds: serverCpu, foreign: 0, foreignTop: '' }
}

/**
 * Runs `measure` (after `prepare`, untimed) and notes how busy the rest of the machine was
 * meanwhile; retakes it up to RETRIES times when others used more than FOREIGN_LIMIT cores.
 */
async function sample(env: Env, label: string, prepare: () => Promise<void> | void, measure: () => Promise<ClientRun>): Promise<ClientRun & { retaken: number }> {
  const exclude = new Set([...env.hostPids, ...env.baseHostPids, ...(env.rsyncd?.pid ? [env.rsyncd.pid] : [])])
  for (let attempt = 0; ; attempt++) {
    await prepare()
    const before = cpuSnapshot()
    const t0 = performance.now()
    const r = await measure()
    const f = foreignCores(before, cpuSnapshot(), (performance.now() - t0) / 1000, exclude)
    const out = { ...r, foreign: f.cores, foreignTop: f.top, retaken: attempt }
    env.log(`${label}: ${fmtSeconds(r.seconds)} s, client CPU ${fmtSeconds(r.cpuSeconds)} s (user ${fmtSeconds(r.userSeconds)}, sys ${fmtSeconds(r.sysSeconds)}), server CPU ${fmtSeconds(r.serverCpuSeconds)} s, ` +
      `peak RSS ${r.maxRssMiB.toFixed(0)} MiB, ${fmtMiB(r.wireBytes)} MiB in; others used ${f.cores.toFixed(2)} cores${f.top ? ` (${f.top})` : ''}`)
    if (f.cores <= FOREIGN_LIMIT || attempt >= env.opts.retries) return out
    env.log(`${label}: the machine was busy, taking it again`)
  }
}

interface Results {
  boot: { dsync: (ClientRun & { retaken: number })[]; rsync: (ClientRun & { retaken: number })[]; base: (ClientRun & { retaken: number })[] }
  incr: { dsync: (ClientRun & { retaken: number })[]; rsync: (ClientRun & { retaken: number })[]; changedFiles: number; changedBytes: number[]; manifestBytes: number[]; gendsyncSeconds: number[] }
  none: { dsync: (ClientRun & { retaken: number })[]; rsync: (ClientRun & { retaken: number })[] }
}

async function measureAll(env: Env): Promise<Results> {
  const { opts, tree } = env
  const res: Results = {
    boot: { dsync: [], rsync: [], base: [] },
    incr: { dsync: [], rsync: [], changedFiles: Math.round(tree.files.length / 100), changedBytes: [], manifestBytes: [], gendsyncSeconds: [] },
    none: { dsync: [], rsync: [] },
  }
  const clean = (dir: string) => () => setAside(env, dir)
  // Bootstrap: dsync and rsync alternate so a burst of load elsewhere hits both alike.
  // The last bootstrap leaves DEST in place for the incremental runs.
  const bootRuns = opts.phases.has('bootstrap') ? opts.runs : 1
  for (let i = 0; i < bootRuns; i++) {
    const base = async () => { res.boot.base.push(await sample(env, `base-cli bootstrap #${i + 1}`, clean(destDsync(env)), () => dsyncPull(env, [], opts.baseCli, true))) }
    // The builds take turns at going first: a pull right after another ran 6% more CPU in both
    // of the first two pairs of one run (the base's, going first each time, lower in both).
    // Counted from the last round, which puts the base first: this build's pull is the last one,
    // so the tree checked below and the DEST the incremental runs start from are its own.
    const baseFirst = (bootRuns - 1 - i) % 2 === 0
    if (opts.baseCli && baseFirst) await base()
    const d = await sample(env, `dsync bootstrap #${i + 1}`, clean(destDsync(env)), () => dsyncPull(env))
    if (opts.baseCli && !baseFirst) await base()
    if (d.summary!.bytesReceived !== d.summary!.bytesToFetch || d.summary!.bytesToFetch !== tree.bytes) {
      throw new Error(`bootstrap received ${d.summary!.bytesReceived} of ${d.summary!.bytesToFetch} bytes to fetch, the tree has ${tree.bytes}`)
    }
    const r = await sample(env, `rsync bootstrap #${i + 1}`, clean(destRsync(env)), () => rsyncPull(env))
    res.boot.dsync.push(d)
    res.boot.rsync.push(r)
  }
  checkSameTree(env, destDsync(env))

  if (opts.phases.has('incremental')) {
    for (let i = 0; i < opts.runs; i++) {
      let changed: string[] = []
      const change = async () => {
        // A new upstream generation: 1% of files rewritten (same size, new mtime), gendsync, reload.
        changed = changeFiles(env.root, tree.files, res.incr.changedFiles, Date.now() + i)
        const g = await timeChildOk(process.execPath, [opts.cli, '--home', env.homes[0], '--json', 'gendsync'])
        res.incr.gendsyncSeconds.push(g.seconds)
        for (const home of env.homes) await timeChildOk(process.execPath, [opts.cli, '--home', home, 'reload'])
        await timeChildOk('bash', ['-c', 'cat "$@" > /dev/null', 'cat', ...changed.map(p => join(env.root, p))])
      }
      const d = await sample(env, `dsync incremental #${i + 1}`, change, () => dsyncPull(env))
      const sizeOf = new Map(tree.files.map(f => [f.path, f.size]))
      res.incr.changedBytes.push(changed.reduce((s, p) => s + sizeOf.get(p)!, 0))
      res.incr.manifestBytes.push(statSync(join(env.root, '.dsync', 'data.dsync')).size)
      if (d.summary!.changed !== changed.length) throw new Error(`dsync saw ${d.summary!.changed} changed files, ${changed.length} were changed`)
      checkFilesEqual(env, destDsync(env), changed)
      // rsync after the same change; a retake of it has nothing left to do, so no retakes.
      const r = await sample(env, `rsync incremental #${i + 1}`, () => {}, () => rsyncPull(env))
      res.incr.dsync.push(d)
      res.incr.rsync.push({ ...r, retaken: 0 })
    }
  }

  if (opts.phases.has('nochange')) {
    for (let i = 0; i < 3; i++) {
      const d = await sample(env, `dsync no-change #${i + 1}`, () => {}, () => dsyncPull(env))
      if (d.summary!.bytesReceived !== 0 || d.summary!.added + d.summary!.changed + d.summary!.removed !== 0) throw new Error('no-change pull changed something')
      res.none.dsync.push(d)
      res.none.rsync.push(await sample(env, `rsync no-change #${i + 1}`, () => {}, () => rsyncPull(env)))
    }
  }
  return res
}

/**
 * Moves an earlier run's DEST out of the way instead of deleting it: ext4 skips inodes freed
 * in the last seconds when it allocates (perf showed ext4_create -> recently_deleted at 40%
 * of the client's samples after an rm -rf of 20k files), which would charge our own cleanup
 * to the next run. The set-aside trees are removed in the background when the benchmark ends
 * (removeInBackground).
 */
async function setAside(env: Env, dir: string): Promise<void> {
  // On tmpfs there is no such cost, and a set-aside tree would stay in memory (~0.8 GB a 200k DEST).
  if (existsSync(dir) && statfsSync(env.dests).type === TMPFS_MAGIC) rmSync(dir, { recursive: true, force: true })
  moveToTrash(dir, join(env.dests, 'trash'))
  await timeChildOk('sync', [])
}

/** Spot check: the files of DEST (outside .dsync/) are as many and as big as the tree's. */
function checkSameTree(env: Env, dest: string): void {
  let files = 0
  let bytes = 0
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === '.dsync' && dir === dest) continue
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) {
        files++
        bytes += statSync(p).size
      }
    }
  }
  walk(dest)
  if (files !== env.tree.files.length || bytes !== env.tree.bytes) throw new Error(`${dest}: ${files} files, ${bytes} bytes; the tree has ${env.tree.files.length}, ${env.tree.bytes}`)
}

function checkFilesEqual(env: Env, dest: string, paths: string[]): void {
  for (const p of paths) {
    if (!readFileSync(join(dest, p)).equals(readFileSync(join(env.root, p)))) throw new Error(`${p} differs after the sync`)
  }
}

function printTable(env: Env, r: Results): void {
  const { tree, opts } = env
  const med = (xs: ClientRun[], f: (x: ClientRun) => number) => median(xs.map(f))
  const sec = (x: ClientRun) => x.seconds
  const mbs = (s: number) => (tree.bytes / 1e6 / s).toFixed(1)
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`
  const rows: (string | number)[][] = []
  const bd = med(r.boot.dsync, sec)
  const br = med(r.boot.rsync, sec)
  rows.push([`bootstrap, ${tree.files.length} files ${fmtMiB(tree.bytes)} MiB: seconds`, fmtSeconds(bd), fmtSeconds(br), ratio(bd, br), '<= 1.00x', bd <= br ? 'yes' : 'NO'])
  rows.push(['bootstrap: MB/s (tree bytes / wall)', mbs(bd), mbs(br), ratio(br, bd), '', ''])
  rows.push(['bootstrap: client CPU s (user+sys)', fmtSeconds(med(r.boot.dsync, x => x.cpuSeconds)), fmtSeconds(med(r.boot.rsync, x => x.cpuSeconds)),
    ratio(med(r.boot.dsync, x => x.cpuSeconds), med(r.boot.rsync, x => x.cpuSeconds)), '', ''])
  for (const [what, f] of [['user', (x: ClientRun) => x.userSeconds], ['sys', (x: ClientRun) => x.sysSeconds]] as const) {
    rows.push([`bootstrap: client ${what} CPU s`, fmtSeconds(med(r.boot.dsync, f)), fmtSeconds(med(r.boot.rsync, f)), ratio(med(r.boot.dsync, f), med(r.boot.rsync, f)), '', ''])
  }
  rows.push(['bootstrap: server CPU s (3 hosts / rsyncd)', fmtSeconds(med(r.boot.dsync, x => x.serverCpuSeconds)), fmtSeconds(med(r.boot.rsync, x => x.serverCpuSeconds)),
    ratio(med(r.boot.dsync, x => x.serverCpuSeconds), med(r.boot.rsync, x => x.serverCpuSeconds)), '', ''])
  const perKFiles = (x: ClientRun) => x.cpuSeconds / (tree.files.length / 1000)
  rows.push(['bootstrap: client CPU s per 1,000 files', med(r.boot.dsync, perKFiles).toFixed(3), med(r.boot.rsync, perKFiles).toFixed(3),
    ratio(med(r.boot.dsync, perKFiles), med(r.boot.rsync, perKFiles)), '', ''])
  const perGB = (x: ClientRun) => x.serverCpuSeconds / (tree.bytes / 1e9)
  rows.push(['bootstrap: server CPU s per GB served (3 hosts / rsyncd)', med(r.boot.dsync, perGB).toFixed(2), med(r.boot.rsync, perGB).toFixed(2),
    ratio(med(r.boot.dsync, perGB), med(r.boot.rsync, perGB)), '', ''])
  if (r.boot.base.length > 0) {
    const b = med(r.boot.base, sec)
    rows.push(['bootstrap seconds, --base-cli build', fmtSeconds(b), '', ratio(b, br), `this build: ${ratio(bd, b)} of base`, ''])
    rows.push(['bootstrap client CPU s, --base-cli build', fmtSeconds(med(r.boot.base, x => x.cpuSeconds)), '', '',
      `this build: ${ratio(med(r.boot.dsync, x => x.cpuSeconds), med(r.boot.base, x => x.cpuSeconds))} of base`, ''])
    for (const [what, f] of [['user', (x: ClientRun) => x.userSeconds], ['sys', (x: ClientRun) => x.sysSeconds]] as const) {
      rows.push([`bootstrap client ${what} CPU s, --base-cli build`, fmtSeconds(med(r.boot.base, f)), '', '', `this build: ${ratio(med(r.boot.dsync, f), med(r.boot.base, f))} of base`, ''])
    }
    rows.push(['bootstrap client peak RSS MiB, --base-cli build', med(r.boot.base, x => x.maxRssMiB).toFixed(0), '', '',
      `this build: ${ratio(med(r.boot.dsync, x => x.maxRssMiB), med(r.boot.base, x => x.maxRssMiB))} of base`, ''])
    rows.push([`bootstrap server CPU s, --base-cli build${opts.baseHosts ? ' (its own 3 hosts)' : ' (our hosts)'}`, fmtSeconds(med(r.boot.base, x => x.serverCpuSeconds)), '', '',
      `this build: ${ratio(med(r.boot.dsync, x => x.serverCpuSeconds), med(r.boot.base, x => x.serverCpuSeconds))} of base`, ''])
  }
  rows.push(['bootstrap: client peak RSS MiB', med(r.boot.dsync, x => x.maxRssMiB).toFixed(0), med(r.boot.rsync, x => x.maxRssMiB).toFixed(0), '', '', ''])
  rows.push(['bootstrap: MiB received (TCP / rsync stats)', fmtMiB(med(r.boot.dsync, x => x.wireBytes)), fmtMiB(med(r.boot.rsync, x => x.wireBytes)), '', '', ''])
  if (r.incr.dsync.length > 0) {
    const changed = median(r.incr.changedBytes)
    const manifest = median(r.incr.manifestBytes)
    const id = med(r.incr.dsync, sec)
    const ir = med(r.incr.rsync, sec)
    const recv = med(r.incr.dsync, x => x.summary!.bytesReceived)
    const wire = med(r.incr.dsync, x => x.wireBytes)
    const limit = 1.2 * (changed + manifest)
    const torrent = statSync(join(env.root, '.dsync', `${REPO}.torrent`)).size
    rows.push([`incremental (${r.incr.changedFiles} files, ${fmtMiB(changed)} MiB changed): seconds`, fmtSeconds(id), fmtSeconds(ir), ratio(id, ir), '', ''])
    rows.push(['incremental: summary bytesReceived / changed bytes', `${recv} / ${changed} = ${(recv / changed).toFixed(3)}`, '', '', '', ''])
    rows.push(['incremental: payload (bytesReceived + data.dsync)', `${recv + manifest}`, '', '', `<= 1.2 x (changed + data.dsync) = ${limit.toFixed(0)}`, recv + manifest <= limit ? 'yes' : 'NO'])
    rows.push([`incremental: bytes received (TCP, incl. .torrent ${(torrent / 1e6).toFixed(1)} MB + data.dsync ${(manifest / 1e6).toFixed(1)} MB) / changed bytes`,
      `${wire} / ${changed} = ${(wire / changed).toFixed(3)}`, `${med(r.incr.rsync, x => x.wireBytes)} (${(med(r.incr.rsync, x => x.wireBytes) / changed).toFixed(3)})`, '',
      `<= 1.2 x (changed + data.dsync) = ${limit.toFixed(0)}`, wire <= limit ? 'yes' : 'NO'])
  }
  if (r.none.dsync.length > 0) {
    const nd = med(r.none.dsync, sec)
    const nr = med(r.none.rsync, sec)
    rows.push(['no-change: seconds', fmtSeconds(nd), fmtSeconds(nr), ratio(nd, nr), 'about 1 s', nd <= 1.5 ? 'yes' : 'NO'])
  }
  console.log(`## ${tree.files.length} files, ${tree.bytes} bytes (${fmtMiB(tree.bytes)} MiB), 3 hosts vs one rsync daemon\n`)
  console.log(markdownTable(['measure', 'dsync (3 hosts)', 'rsync -a (1 daemon)', 'dsync/rsync', 'target', 'met'], rows))
  const list = (xs: ClientRun[]) => xs.map(x => `${fmtSeconds(x.seconds)}${x.foreign > FOREIGN_LIMIT ? '*' : ''}`).join(', ')
  const loads = (xs: ClientRun[]) => xs.map(x => x.foreign.toFixed(2)).join(', ')
  const all = [...r.boot.dsync, ...r.boot.rsync, ...r.incr.dsync, ...r.incr.rsync, ...r.none.dsync, ...r.none.rsync] as (ClientRun & { retaken: number })[]
  const perHost = r.boot.dsync.at(-1)!.summary!.bytesPerHost
  console.log(`
- Medians of ${r.boot.dsync.length} bootstrap, ${r.incr.dsync.length} incremental and ${r.none.dsync.length} no-change runs. Wall time around the client process, start-up included; page cache warm on the source side.
- dsync: \`node ${opts.clientCli === DEFAULT_CLI ? 'dist/cli/main.js' : opts.clientCli}${isBundleCli(opts.clientCli) ? ' (the installed bundle)' : ''} --json pull dtp://${opts.hosts[0]}/${REPO} DEST --peer ${opts.hosts[1]}:${PORT} --peer ${opts.hosts[2]}:${PORT}\`; hosts: \`dsync service\` on ${opts.hosts.join(', ')}:${PORT}, seeding the tree in place.
- rsync: \`rsync -a --stats rsync://${opts.rsyncAddress}:${RSYNC_PORT}/mod/ DEST2/\`, daemon \`rsync --daemon --no-detach\` (rsync ${rsyncVersion()}), .dsync/ excluded.
- runs (s): dsync bootstrap ${list(r.boot.dsync)}; rsync bootstrap ${list(r.boot.rsync)}; dsync incremental ${list(r.incr.dsync)}; rsync incremental ${list(r.incr.rsync)}; dsync no-change ${list(r.none.dsync)}; rsync no-change ${list(r.none.rsync)}.
- bootstrap bytes per host (last run): ${Object.entries(perHost).map(([h, b]) => `${h} ${fmtMiB(b)} MiB`).join(', ')}.
- incremental: gendsync after the change ${r.incr.gendsyncSeconds.map(fmtSeconds).join(', ')} s (not in the sync time); changed files compared byte for byte after each dsync run. TCP bytes = all bytes the client read from its sockets (HTTP info + .torrent, peer wire incl. data.dsync and protocol overhead), counted by a preloaded socket hook; summary bytesReceived counts file piece payload only.
- load: other processes' CPU during each run, in cores (runs marked * exceeded ${FOREIGN_LIMIT}; ${all.reduce((s, x) => s + x.retaken, 0)} runs were retaken because of it): bootstrap dsync ${loads(r.boot.dsync)}, rsync ${loads(r.boot.rsync)}; incremental dsync ${loads(r.incr.dsync)}, rsync ${loads(r.incr.rsync)}; no-change dsync ${loads(r.none.dsync)}. Busiest others: ${[...new Set(all.map(x => x.foreignTop).filter(Boolean))].slice(0, 3).join(' | ') || 'none'}.`)
}

function rsyncVersion(): string {
  try {
    return /version (\S+)/.exec(execFileSync('rsync', ['--version']).toString())?.[1] ?? '?'
  } catch {
    return '?'
  }
}

/**
 * `dsync service --foreground` under node --cpu-prof (NODE_OPTIONS may not carry --cpu-prof,
 * and `service` starts its foreground child without our flags), detached like `service`
 * does; ready once `status` answers. It writes the profile when stop-service ends it.
 */
async function startProfiledHost(cli: string, home: string, dir: string): Promise<void> {
  mkdirSync(join(home, 'log'), { recursive: true })
  const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, cli, '--home', home, 'service', '--foreground'],
    { detached: true, stdio: 'ignore' })
  child.unref()
  for (let i = 0; i < 300; i++) {
    if ((await timeChild(process.execPath, [cli, '--home', home, 'status'])).code === 0) return
    if (child.exitCode !== null) break
    await new Promise(res => setTimeout(res, 100))
  }
  throw new Error(`profiled host in ${home} did not start (exit ${child.exitCode})`)
}

/** The profile of the first host over the whole dataset's runs (the service and its stop command write one each). */
function printHostProfile(dir: string, address: string): void {
  const files = existsSync(dir) ? readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => join(dir, f)) : []
  const summaries = files.map(f => ({ f, s: summarizeCpuProfile(f, 20) })).sort((a, b) => b.s.totalMs - a.s.totalMs)
  if (summaries.length === 0) return console.log(`\nno host profile in ${dir}`)
  printProfile(`Host profile, ${address} (node --cpu-prof over all runs of this dataset)`, summaries[0].f, summaries[0].s)
}

function printProfile(title: string, file: string, s: ReturnType<typeof summarizeCpuProfile>): void {
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1)}%`
  console.log(`\n## ${title}\n`)
  console.log(`profile ${file}: ${(s.totalMs / 1000).toFixed(1)} s sampled; idle ${pct(s.idleMs)}, garbage collector ${pct(s.gcMs)}, (program) ${pct(s.programMs)} (native work outside JS: syscalls, hashing, copies)\n`)
  console.log(markdownTable(['function (self time)', 'ms', 'share'], s.top.map(t => [t.name.replace(/\|/g, '\\|'), t.ms.toFixed(0), pct(t.ms)])))
  console.log('')
  console.log(markdownTable(['file / group (self time)', 'ms', 'share'], s.byFile.map(t => [t.file.replace(/\|/g, '\\|'), t.ms.toFixed(0), pct(t.ms)])))
}

/** One more bootstrap with node --cpu-prof on the client: where its time goes. */
async function profile(env: Env): Promise<void> {
  const dir = join(env.base, 'prof')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const r = await sample(env, 'dsync bootstrap, --cpu-prof', () => setAside(env, destDsync(env)),
    () => dsyncPull(env, ['--cpu-prof', '--cpu-prof-dir', dir]))
  const file = readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => join(dir, f))[0]
  if (!file || !existsSync(file)) throw new Error(`no .cpuprofile in ${dir}`)
  printProfile(`Client profile, ${env.tree.files.length} files (one bootstrap under --cpu-prof: ${fmtSeconds(r.seconds)} s wall, ${fmtSeconds(r.cpuSeconds)} s CPU; others used ${r.foreign.toFixed(2)} cores)`,
    file, summarizeCpuProfile(file, 20))
}
