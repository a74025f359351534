import { execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeCli, installedRun, isBundleCli, withRunBundle } from './lib/client-bundle.js'
import { WireLeecher } from '../testbed/leecher.js'
import { BenchArgError, eachArg } from './lib/args.js'
import { machineLoad, median, timeChild, timeChildOk } from './lib/measure.js'
import { startRsyncd } from './lib/rsyncd.js'
import { fmtMiB, fmtSeconds, markdownTable } from './lib/table.js'
import { changeFiles, ensureTree, OLD_MTIME_S, type GeneratedTree, type TreeSpec } from './lib/tree.js'
import { moveToTrash, removeInBackground } from './lib/trash.js'
import { readPid } from '../src/util/process.js'

/**
 * Mirror-scale figures (issue 11), each beside `rsync -a` from one rsync daemon on the same
 * tree in the same run: gendsync (full against the sha256sum floor, after 0.05% of files
 * changed with and without the change hint), every .torrent loaded by libtorrent with its
 * default limits, host start to serving and its RSS, a client one generation behind (update
 * bytes on the wire, no-change check, client peak RSS), and a bootstrap into an empty DEST.
 * The no-change checks run 5 times each by turns (rsync's once at more than 300,000 files),
 * gendsync's full run and its floor 3 times (once each at more than 300,000 files): medians.
 *
 *   npm run bench -- scale [--dir /work/scratch/dsync-scale] [--only small-200k,small-1m,debs-50k]
 *                          [--fresh] [--keep] [--cli PATH/cli/main.js | --modules]
 *                          [--steps gendsync,update,nochange,bootstrap] [--work DIR] [--base-cli PATH/cli/main.js]
 *                          [--no-rsync-bootstrap]
 *
 * Trees are generated once under --dir and reused (1M files take a while); --keep leaves
 * them there at the end, otherwise they are deleted. The client's DEST starts as an rsync
 * copy of the tree plus the host's .dsync/ (a mirror at the previous generation); rsync's
 * DEST is the same copy without .dsync/. --steps runs only some of the measurements (the
 * hosts always start): without `gendsync` the tree is served as its .dsync/ already is and
 * is not written to (`--steps bootstrap --work DIR` measures a bootstrap of a tree someone
 * else prepared, with the hosts' homes and every DEST under DIR). --base-cli adds the same
 * pulls by another client build on the same hosts, in the same run (a before/after): each update
 * and the no-change check into its own DEST (hard links of the first client's, its own
 * .dsync/: a pull replaces a changed file by a rename, never in place), and a bootstrap.
 * --no-rsync-bootstrap leaves out rsync's bootstrap (minutes at 1M files) when the run is a
 * before/after of two builds (--base-cli) under the bench lock: its rows then have no rsync column.
 * Every dsync command (gendsync, the hosts, the pulls) runs the installed form, the bundle, made
 * from this tree's dist/ at the start (bench/lib/client-bundle.ts, as bench gendsync and swarm do),
 * unless --cli names another build or --modules asks for tsc's dist/cli/main.js (what this bench
 * ran up to session 18: ~0.1-0.25 s more of every command's start, which is most of a no-change
 * check's time). Give --base-cli the same form.
 */
const MODULES_CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SOCKET_BYTES = fileURLToPath(new URL('./lib/socket-bytes.js', import.meta.url))
const REPO = 'bench'
const PORT = 47921
const HOSTS = ['127.0.111.2', '127.0.111.3', '127.0.111.4']
const RSYNC_ADDRESS = '127.0.111.9'
const CLIENT_ADDRESS = '127.0.111.20'
const RSYNC_PORT = 47939
const CHANGE_FRACTION = 0.0005
/** The no-change checks are run this many times each, by turns, on trees of up to NOCHANGE_RUNS_UP_TO files. */
const NOCHANGE_RUNS = 5
const NOCHANGE_RUNS_UP_TO = 300_000
/** gendsync's full run and its floor, by turns, on trees of up to NOCHANGE_RUNS_UP_TO files. */
const GENDSYNC_RUNS = 3
const STEPS = ['gendsync', 'update', 'nochange', 'bootstrap'] as const
type Step = (typeof STEPS)[number]

const DATASETS: TreeSpec[] = [
  // Debian-pool-shaped, 100 B - 3 KB files (SCALE-NOTES' 200k and 1M trees).
  { name: 'small-200k', files: 200_000, medianBytes: 1200, sigma: 0.8, minBytes: 100, maxBytes: 3000, seed: 2000 },
  { name: 'small-1m', files: 1_000_000, medianBytes: 1200, sigma: 0.8, minBytes: 100, maxBytes: 3000, seed: 1000 },
  // Realistic .deb sizes: median 60 KB, a long tail, capped to keep the disk in bounds.
  { name: 'debs-50k', files: 50_000, medianBytes: 60 << 10, sigma: 1.5, minBytes: 1000, maxBytes: 256 << 20, totalBytes: 6 * 2 ** 30, seed: 50 },
]

interface Options {
  dir: string
  only: string[]
  fresh: boolean
  keep: boolean
  cli: string
  steps: Set<Step>
  /** Another client build whose bootstrap is measured beside this one's. */
  baseCli?: string
  /** Where the hosts' homes, the DESTs and the rsync daemon's files go (default: beside the tree). */
  work?: string
  /** No rsync bootstrap beside dsync's. */
  noRsyncBootstrap?: boolean
  /** tsc's modules (dist/cli/main.js) rather than the bundle. */
  modules?: boolean
}

function parseArgs(args: string[]): Options {
  const o: Options = { dir: '/work/scratch/dsync-scale', only: ['small-200k'], fresh: false, keep: false, cli: '', steps: new Set(STEPS) }
  eachArg(args, (a, value) => {
    if (a === '--dir') o.dir = value()
    else if (a === '--only') o.only = value().split(',')
    else if (a === '--fresh') o.fresh = true
    else if (a === '--keep') o.keep = true
    else if (a === '--cli') o.cli = value()
    else if (a === '--work') o.work = value()
    else if (a === '--base-cli') o.baseCli = value()
    else if (a === '--no-rsync-bootstrap') o.noRsyncBootstrap = true
    else if (a === '--modules') o.modules = true
    else if (a === '--steps') o.steps = new Set(value().split(',') as Step[])
    else throw new Error(`unknown argument ${a}`)
  })
  for (const s of o.steps) if (!STEPS.includes(s)) throw new Error(`no step ${s} (${STEPS.join(', ')})`)
  for (const n of o.only) if (!DATASETS.some(d => d.name === n)) throw new Error(`no dataset ${n} (${DATASETS.map(d => d.name).join(', ')})`)
  return o
}

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args)
  if (opts.cli || opts.modules) return measure({ ...opts, cli: opts.cli || MODULES_CLI })
  await withRunBundle(ROOT, cli => measure({ ...opts, cli }))
}

async function measure(opts: Options): Promise<void> {
  const log = (m: string) => process.stderr.write(`[scale] ${m}\n`)
  if (opts.baseCli && isBundleCli(opts.baseCli) !== isBundleCli(opts.cli)) {
    log(`warning: --base-cli ${opts.baseCli} is not the form measured for this build (${isBundleCli(opts.cli) ? 'bundle' : 'modules'}): the pair is not like with like`)
  }
  console.log('# scale benchmark: mirror-sized trees, 3 dsync hosts vs one rsync daemon (loopback)\n')
  console.log(`machine: ${availableParallelism()} cores; before start: ${await machineLoad()}\n`)
  console.log(`dsync: ${describeCli(opts.cli, MODULES_CLI)}\n`)
  for (const spec of DATASETS.filter(d => opts.only.includes(d.name))) {
    const env = new Bed(opts, spec, log)
    try {
      await env.measure()
    } finally {
      await env.stop()
      // A tree named by --dir with a separate --work is someone else's: only the work goes.
      if (!opts.keep) rmSync(opts.work ? env.work : env.base, { recursive: true, force: true })
      // The measured DESTs set aside during the run: deleted now, detached, after the last measurement.
      else removeInBackground(env.trash)
    }
  }
  console.log(`\nafter the runs: ${await machineLoad()}`)
}

type Row = (string | number)[]

class Bed {
  readonly base: string
  /** Everything but the tree: hosts' homes, DESTs, the rsync daemon's files. */
  readonly work: string
  /** Measured DESTs set aside during the run (bench/lib/trash.ts), removed after it. */
  readonly trash: string
  readonly webroot: string
  readonly root: string
  readonly homes: string[]
  tree!: GeneratedTree
  rsyncd?: ChildProcess
  readonly rows: Row[] = []

  constructor(readonly opts: Options, readonly spec: TreeSpec, readonly log: (m: string) => void) {
    this.base = join(opts.dir, spec.name)
    this.work = opts.work ? join(opts.work, spec.name) : this.base
    this.trash = join(this.work, 'trash')
    this.webroot = join(this.base, 'web')
    this.root = join(this.webroot, REPO)
    this.homes = HOSTS.map(addr => join(this.work, 'hosts', addr))
  }

  /** A command as an operator runs it: the bundle's bin where it has one (bench/lib/client-bundle.ts). */
  cli(home: string, ...a: string[]) {
    const command = installedRun(this.opts.cli)
    return timeChildOk('/usr/bin/time', ['-f', '%M', '-o', join(this.work, 'time.out'), command.cmd, ...command.args, '--home', home, ...a])
  }

  /** Peak RSS in MiB of the last command run through /usr/bin/time. */
  lastRss(): number {
    return Number(readFileSync(join(this.work, 'time.out'), 'utf8').trim().split('\n').pop()) / 1024
  }

  async measure(): Promise<void> {
    const steps = this.opts.steps
    mkdirSync(this.base, { recursive: true })
    mkdirSync(this.work, { recursive: true })
    this.tree = ensureTree(this.root, this.spec, this.opts.fresh, this.log)
    // Without gendsync the tree is served as its .dsync/ describes it: nothing in it changes.
    if (steps.has('gendsync')) writeIndexFiles(this.root, this.tree.files.length, 1)
    // Else the hosts would wait for a generation nobody makes (their start is timed, not bounded).
    else if (!existsSync(join(this.root, '.dsync', 'data.dsync'))) {
      throw new BenchArgError(`${this.root} has no .dsync/ yet: its first run needs --steps gendsync,...`)
    }
    this.log(`${this.spec.name}: ${this.tree.created ? `generated in ${fmtSeconds(this.tree.seconds)} s` : 'reused'}: ${this.tree.files.length} files, ${fmtMiB(this.tree.bytes)} MiB`)
    for (const [i, home] of this.homes.entries()) {
      mkdirSync(join(home, 'repos'), { recursive: true })
      writeFileSync(join(home, 'xync.conf'), `webroot=${this.webroot}\nlisten=${HOSTS[i]}\nport=${PORT}\n`)
      writeFileSync(join(home, 'repos', `${REPO}.conf`), `repo=${REPO}\nsave=${this.root}\ndsync=true\n`)
    }
    await timeChildOk('bash', ['-c', 'find . -type f -print0 | xargs -0 cat > /dev/null'], { cwd: this.root })
    if (steps.has('gendsync')) {
      await this.gendsyncFull()
      this.checkTorrents()
    }
    await this.startHosts()
    this.rsyncd = await startRsyncd(this.work, this.root, RSYNC_ADDRESS, RSYNC_PORT)
    try {
      if (steps.has('update') || steps.has('nochange')) await this.prepareDests()
      if (steps.has('update')) {
        await this.update('without the change hint', false, 1)
        await this.update('with the change hint', true, 2)
      }
      if (steps.has('nochange')) await this.noChange()
      if (steps.has('bootstrap')) await this.bootstrap()
    } catch (err) {
      // A failed step is a result too: the rows so far are printed with it.
      this.rows.push(['FAILED', (err as Error).message.split('\n').slice(-3).join(' ').slice(0, 300), '', '', '', 'NO'])
    }
    console.log(`## ${this.spec.name}: ${this.tree.files.length} files, ${fmtMiB(this.tree.bytes)} MiB (load ${uptime()})\n`)
    console.log(markdownTable(['measure', 'dsync', 'rsync -a (1 daemon) / baseline', 'ratio', 'target', 'met'], this.rows))
    console.log('')
  }

  /**
   * The full run against the sha256sum floor, GENDSYNC_RUNS times by turns up to
   * NOCHANGE_RUNS_UP_TO files (once past it: a 1M-file run is a minute): a single pair put the
   * same build at 1.49x (bench gendsync's median) and 1.72x (one run here) in one session.
   * The last full run's .dsync/ is the one the update steps start from. An earlier run's
   * removal of its set-aside trees (removeInBackground) is paused meanwhile: bench gendsync
   * times nothing beside one, and in session 22 a second run of this bench, minutes after the
   * first, timed the same build's full run 7.60 s against 6.13 (floor 4.26 against 3.75 s)
   * beside the first one's `rm -rf` of 200,000-file trees (docs/SCALE.md, session 23).
   */
  async gendsyncFull(): Promise<void> {
    const paused = pauseRemovals(this.work)
    if (paused.length > 0) this.log(`paused ${paused.length} removal(s) of an earlier run's trees while gendsync is timed`)
    try {
      await this.timeGendsyncFull()
    } finally {
      resume(paused)
    }
  }

  private async timeGendsyncFull(): Promise<void> {
    const runs = this.tree.files.length <= NOCHANGE_RUNS_UP_TO ? GENDSYNC_RUNS : 1
    const floors: number[] = []
    const fulls: { seconds: number; rss: number; stdout: string }[] = []
    const floor = async () => {
      floors.push((await timeChildOk('bash', ['-c', "find . -path ./.dsync -prune -o -type f -print0 | xargs -0 sha256sum > /dev/null"], { cwd: this.root })).seconds)
    }
    const full = async () => {
      rmSync(join(this.root, '.dsync'), { recursive: true, force: true })
      const g = await this.cli(this.homes[0], '--json', 'gendsync')
      fulls.push({ seconds: g.seconds, rss: this.lastRss(), stdout: g.stdout })
    }
    // Turns: neither side always runs right after the other's page-cache and CPU use; the full run goes last.
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) await floor(), await full()
      else await full(), await floor()
    }
    if (runs % 2 === 0) await full()
    const f = median(floors)
    const g = median(fulls.map(x => x.seconds))
    const spread = (xs: number[]) => xs.length > 1 ? ` (${xs.length} runs: ${xs.map(fmtSeconds).join(', ')})` : ''
    const r = JSON.parse(fulls[fulls.length - 1].stdout) as { shards?: unknown[] }
    // Judged on each floor against the full run timed beside it, as bench gendsync judges its
    // rounds: the ratio of the two medians pairs a floor from one round with a full run from
    // another, and in session 22 that put one build at 1.45x there and 1.63x here, where the
    // pairs' medians were 1.64x and 1.63x (docs/SCALE.md, session 23).
    const pairs = floors.map((x, i) => fulls[i].seconds / x)
    const paired = median(pairs)
    this.rows.push([`gendsync full: seconds${runs > 1 ? ', median' : ''} (vs sha256sum floor${runs > 1 ? `; ratio: median of the pairs ${pairs.map(x => `${x.toFixed(2)}x`).join(', ')}` : ''})`, fmtSeconds(g) + spread(fulls.map(x => x.seconds)), fmtSeconds(f) + spread(floors), `${paired.toFixed(2)}x`, ...(this.spec.files === 200_000 ? ['<= 1.5x', ok(paired <= 1.5)] : ['(1.5x is the 200k target)', ''])])
    this.rows.push(['gendsync full: peak RSS MiB', Math.max(...fulls.map(x => x.rss)).toFixed(0), '', '', '', ''])
    this.rows.push(['torrents', r.shards ? `index + ${r.shards.length} shards` : 'one', '', '', '', ''])
    this.fullSeconds = g
  }

  fullSeconds = 0

  /** Every .torrent gendsync wrote, loaded by libtorrent 2.0 with its default limits. */
  checkTorrents(): void {
    const dir = join(this.root, '.dsync')
    const files = [join(dir, `${REPO}.torrent`), ...(existsSync(join(dir, 'shards')) ? readdirSync(join(dir, 'shards')).map(f => join(dir, 'shards', f)) : [])]
    const biggest = Math.max(...files.map(f => statSync(f).size))
    let loaded = 'libtorrent not installed'
    try {
      const out = execFileSync('/usr/bin/python3', ['-c', 'import sys, libtorrent as lt\nfor f in sys.argv[1:]: lt.torrent_info(f)\nprint(len(sys.argv) - 1)', ...files], { encoding: 'utf8' })
      loaded = `${out.trim()} of ${files.length} load`
    } catch (err) {
      loaded = `REFUSED: ${(err as Error).message.split('\n').slice(-2).join(' ')}`
    }
    this.rows.push(['every .torrent in libtorrent 2.0, default limits', loaded, `largest ${fmtMiB(biggest)} MiB`, '', 'all load', ok(loaded.endsWith(' load') && loaded.startsWith(`${files.length} `))])
  }

  async startHosts(): Promise<void> {
    for (const [i, home] of this.homes.entries()) {
      await timeChild(process.execPath, [this.opts.cli, '--home', home, 'stop-service'])
      mkdirSync(join(home, 'dtp'), { recursive: true })
      writeFileSync(join(home, 'dtp', 'list.conf'), `/${REPO}\n`)
      const started = performance.now()
      await timeChildOk(process.execPath, [this.opts.cli, '--home', home, 'service'])
      await waitServing(HOSTS[i])
      if (i === 0) {
        const seconds = (performance.now() - started) / 1000
        // HTTP answers before the host has read gendsync's inodes; blocks wait for them.
        await firstBlock(HOSTS[i])
        const block = (performance.now() - started) / 1000
        const pid = readPid(join(home, 'run', 'dtp.pid'))
        const rss = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024
        this.rows.push(['host: service start -> repo served over HTTP, seconds', fmtSeconds(seconds), '', '', '<= 5 s at 1M files', ok(seconds <= 5)])
        this.rows.push(['host: service start -> first block on the peer wire, seconds', fmtSeconds(block), '', '', '', ''])
        this.rows.push(['host: peak RSS MiB after start', rss.toFixed(0), '', '', '<= 500 MB at 1M files', ok(rss <= 500)])
      }
    }
  }

  async prepareDests(): Promise<void> {
    for (const d of ['dest-dsync', 'dest-rsync', 'dest-base']) moveToTrash(join(this.work, d), this.trash)
    await timeChildOk('rsync', ['-a', '--exclude=/.dsync', `${this.root}/`, `${join(this.work, 'dest-rsync')}/`])
    await timeChildOk('rsync', ['-a', '--exclude=/.dsync/hashcache', '--exclude=/.dsync/lock', `${this.root}/`, `${join(this.work, 'dest-dsync')}/`])
    if (this.opts.baseCli) {
      // Hard links, not a third copy of the tree (6 GiB for debs-50k); .dsync/ is its own.
      await timeChildOk('rsync', ['-a', `--link-dest=${join(this.work, 'dest-dsync')}`, '--exclude=/.dsync', `${join(this.work, 'dest-dsync')}/`, `${join(this.work, 'dest-base')}/`])
      await timeChildOk('rsync', ['-a', `${join(this.work, 'dest-dsync', '.dsync')}/`, `${join(this.work, 'dest-base', '.dsync')}/`])
    }
  }

  /** The --base-cli build's pull into its own DEST (dest-base), as a row beside this build's. */
  async basePull(label: string, d: { seconds: number; rss: number }): Promise<void> {
    if (!this.opts.baseCli) return
    const b = await this.dsyncPull(join(this.work, 'dest-base'), this.opts.baseCli)
    this.rows.push([`${label}, --base-cli build: seconds`, fmtSeconds(b.seconds), fmtSeconds(d.seconds), `this build: ${ratio(d.seconds, b.seconds)} of base`, '', ''])
    this.rows.push([`${label}, --base-cli build: bytes on the wire / peak RSS MiB`, `${b.wire} / ${b.rss.toFixed(0)}`, '', '', '', ''])
  }

  /** 0.05% of files and the index files change upstream; gendsync (timed); both clients follow. */
  async update(label: string, hinted: boolean, round: number): Promise<void> {
    const count = Math.max(1, Math.round(this.tree.files.length * CHANGE_FRACTION))
    const changed = changeFiles(this.root, this.tree.files, count, 7 * round)
    const index = writeIndexFiles(this.root, this.tree.files.length, round + 1)
    const sizeOf = new Map(this.tree.files.map(f => [f.path, f.size]))
    const changedBytes = changed.reduce((s, p) => s + sizeOf.get(p)!, 0) + index.bytes
    const entries = changed.length + index.paths.length
    const hint = join(this.work, 'changes')
    writeFileSync(hint, [...changed, ...index.paths].join('\n') + '\n')
    const g = await this.cli(this.homes[0], '--json', 'gendsync', ...(hinted ? ['--changed', hint] : []))
    // Without the gendsync step (--steps) this run has no full run to compare with: no ratio, no verdict.
    const full = this.fullSeconds > 0
    this.rows.push([`gendsync after ${entries} entries changed, ${label}: seconds (vs full)`, fmtSeconds(g.seconds),
      full ? fmtSeconds(this.fullSeconds) : 'full not run (--steps)', full ? ratio(g.seconds, this.fullSeconds) : '',
      // The issue sets both gendsync targets at 200,000 files, as the full row says.
      ...(hinted && this.spec.files === 200_000 ? ['<= 10% of full', full ? ok(g.seconds <= 0.1 * this.fullSeconds) : ''] : [hinted ? '(10% is the 200k target)' : '', ''])])
    const reloaded = performance.now()
    for (const home of this.homes) await timeChildOk(process.execPath, [this.opts.cli, '--home', home, 'reload'])
    // The clients start once every host serves the new generation (a reload loads it first).
    const infoHash = (JSON.parse(g.stdout) as { infoHash: string }).infoHash
    for (const h of HOSTS) await waitServing(h, infoHash)
    this.rows.push([`update #${round}: hosts reload -> new generation served, seconds`, fmtSeconds((performance.now() - reloaded) / 1000), '', '', '', ''])
    const d = await this.dsyncPull()
    const r = await this.rsyncPull()
    const limit = 1.2 * changedBytes + 65536 + 300 * entries
    this.rows.push([`update #${round} (${entries} entries, ${fmtMiB(changedBytes)} MiB changed): bytes on the wire`, d.wire, r.wire, ratio(d.wire, r.wire), `<= ${limit.toFixed(0)}`, ok(d.wire <= limit)])
    this.rows.push([`update #${round}: seconds`, fmtSeconds(d.seconds), fmtSeconds(r.seconds), ratio(d.seconds, r.seconds), "<= rsync's", ok(d.seconds <= r.seconds)])
    this.rows.push([`update #${round}: of which in the pull (the rest: Node's start, loading the CLI, exit)`, fmtSeconds(pullSeconds(d.stdout)), '', '', '', ''])
    this.rows.push([`update #${round}: client peak RSS MiB`, d.rss.toFixed(0), r.rss.toFixed(0), ratio(d.rss, r.rss), '<= 150 MB at 1M files', ok(d.rss <= 150)])
    await this.basePull(`update #${round}`, d)
  }

  /**
   * Both no-change checks NOCHANGE_RUNS times by turns: a third of a second against a second or
   * two is a ratio one busy moment can move, so the medians are compared and the spreads printed.
   * Past NOCHANGE_RUNS_UP_TO files rsync's runs once (it takes half a minute there) while dsync's
   * still runs NOCHANGE_RUNS times: the 1M tree's "under 1 s" is judged on a median too (one run
   * of 1.02 s at load 5-9 against 0.28-0.45 s by hand, session 22).
   */
  async noChange(): Promise<void> {
    const rsyncRuns = this.tree.files.length <= NOCHANGE_RUNS_UP_TO ? NOCHANGE_RUNS : 1
    const ds: Awaited<ReturnType<Bed['dsyncPull']>>[] = []
    const rs: Awaited<ReturnType<Bed['rsyncPull']>>[] = []
    for (let i = 0; i < NOCHANGE_RUNS; i++) {
      const rsyncToo = i < rsyncRuns
      // Turns: neither side always runs right after the other's page-cache and CPU use.
      if (i % 2 === 0) ds.push(await this.dsyncPull()), rsyncToo && rs.push(await this.rsyncPull())
      else rsyncToo && rs.push(await this.rsyncPull()), ds.push(await this.dsyncPull())
    }
    const mid = <T extends { seconds: number }>(xs: T[]) => [...xs].sort((a, b) => a.seconds - b.seconds)[(xs.length - 1) >> 1]
    const spread = (xs: { seconds: number }[]) => xs.length > 1 ? ` (${xs.length} runs: ${xs.map(x => fmtSeconds(x.seconds)).join(', ')})` : ''
    const [d, r] = [mid(ds), mid(rs)]
    this.rows.push(['no-change check: bytes on the wire', Math.max(...ds.map(x => x.wire)), r.wire, ratio(d.wire, r.wire), '<= 65536', ok(ds.every(x => x.wire <= 65536))])
    this.rows.push([`no-change check: seconds, median`, fmtSeconds(d.seconds) + spread(ds), fmtSeconds(r.seconds) + spread(rs), ratio(d.seconds, r.seconds),
      // And under a second at 1M files (the issue's).
      ...(this.spec.files >= 1_000_000 ? ["<= 0.2x rsync's, < 1 s", ok(d.seconds <= 0.2 * r.seconds && d.seconds < 1)] : ["<= 0.2x rsync's", ok(d.seconds <= 0.2 * r.seconds)])])
    this.rows.push(['no-change check: of which in the pull (the rest: Node\'s start, loading the CLI, exit)', fmtSeconds(pullSeconds(d.stdout)), '', '', '', ''])
    this.rows.push(['no-change check: client peak RSS MiB', Math.max(...ds.map(x => x.rss)).toFixed(0), Math.max(...rs.map(x => x.rss)).toFixed(0), ratio(d.rss, r.rss), '', ''])
    await this.basePull('no-change check', d)
  }

  /** Both clients into an empty DEST: the whole generation, once each (at 1M files this is minutes). */
  async bootstrap(): Promise<void> {
    const [dd, rd] = [join(this.work, 'boot-dsync'), join(this.work, 'boot-rsync')]
    // Set aside, not removed: a 1M-file DEST takes minutes to delete (bench/lib/trash.ts).
    for (const d of [dd, rd]) moveToTrash(d, this.trash)
    const d = await this.dsyncPull(dd)
    moveToTrash(dd, this.trash)
    const base = this.opts.baseCli ? await this.dsyncPull(dd, this.opts.baseCli) : undefined
    moveToTrash(dd, this.trash)
    const r = this.opts.noRsyncBootstrap ? undefined : await this.rsyncPull(rd)
    moveToTrash(rd, this.trash)
    const summary = summaryOf(d.stdout)
    const label = `bootstrap (${summary.added} entries, ${fmtMiB(summary.bytesReceived)} MiB fetched)`
    const beside = (ours: number, theirs: number | undefined, text: string | number) => theirs === undefined ? ['', ''] : [text, ratio(ours, theirs)]
    this.rows.push([`${label}: seconds`, fmtSeconds(d.seconds), ...beside(d.seconds, r?.seconds, fmtSeconds(r?.seconds ?? 0)), '', ''])
    this.rows.push(['bootstrap: client peak RSS MiB', d.rss.toFixed(0), ...beside(d.rss, r?.rss, (r?.rss ?? 0).toFixed(0)), '<= 400 MB at 1M files', ok(d.rss * 2 ** 20 <= 400e6)])
    this.rows.push(['bootstrap: bytes on the wire', d.wire, ...beside(d.wire, r?.wire, r?.wire ?? 0), '', ''])
    if (base) {
      this.rows.push(['bootstrap, --base-cli build: seconds', fmtSeconds(base.seconds), fmtSeconds(d.seconds), `this build: ${ratio(d.seconds, base.seconds)} of base`, '', ''])
      this.rows.push(['bootstrap, --base-cli build: client peak RSS MiB', base.rss.toFixed(0), d.rss.toFixed(0), `this build: ${ratio(d.rss, base.rss)} of base`, '', ''])
    }
  }

  async dsyncPull(dest = join(this.work, 'dest-dsync'), cli = this.opts.cli): Promise<{ seconds: number; wire: number; rss: number; stdout: string }> {
    const bytesFile = join(this.work, 'socket-bytes.json')
    rmSync(bytesFile, { force: true })
    // The socket counter is loaded into the client's Node (through NODE_OPTIONS for the bin).
    const command = installedRun(cli, ['--import', SOCKET_BYTES])
    const r = await timeChildOk('/usr/bin/time', ['-f', '%M', '-o', join(this.work, 'time.out'), command.cmd, ...command.args,
      '--json', 'pull', `dtp://${HOSTS[0]}/${REPO}`, dest, ...HOSTS.slice(1).flatMap(h => ['--peer', `${h}:${PORT}`])],
    { env: { ...(command.env ?? process.env), DSYNC_BENCH_SOCKET_BYTES: bytesFile } })
    return { seconds: r.seconds, wire: (JSON.parse(readFileSync(bytesFile, 'utf8')) as { read: number }).read, rss: this.lastRss(), stdout: r.stdout }
  }

  async rsyncPull(dest = join(this.work, 'dest-rsync')): Promise<{ seconds: number; wire: number; rss: number }> {
    const r = await timeChildOk('/usr/bin/time', ['-f', '%M', '-o', join(this.work, 'time.out'), 'rsync', '-a', '--delete', '--stats',
      `rsync://${RSYNC_ADDRESS}:${RSYNC_PORT}/mod/`, `${dest}/`])
    const m = /Total bytes received: ([\d,.]+)/.exec(r.stdout)
    return { seconds: r.seconds, wire: m ? Number(m[1].replace(/[,.]/g, '')) : NaN, rss: this.lastRss() }
  }

  async stop(): Promise<void> {
    for (const home of this.homes) await timeChild(process.execPath, [this.opts.cli, '--home', home, 'stop-service'])
    if (this.rsyncd && this.rsyncd.exitCode === null) {
      this.rsyncd.kill()
      await new Promise(res => this.rsyncd!.once('exit', res))
    }
  }
}

/** Release, InRelease and Packages.xz as a Debian suite has them, sized to the tree; new content each round. */
function writeIndexFiles(root: string, files: number, round: number): { paths: string[]; bytes: number } {
  const dir = join(root, 'dists', 'stable')
  const out = { 'dists/stable/Release': 2000, 'dists/stable/InRelease': 3000, 'dists/stable/main/binary-amd64/Packages.xz': files * 20 }
  mkdirSync(join(dir, 'main', 'binary-amd64'), { recursive: true })
  let bytes = 0
  for (const [path, size] of Object.entries(out)) {
    const buf = Buffer.alloc(size, `round ${round} ${path}\n`)
    writeFileSync(join(root, path), buf)
    execFileSync('touch', ['-d', `@${OLD_MTIME_S + round * 3600}`, join(root, path)])
    bytes += size
  }
  return { paths: Object.keys(out), bytes }
}

async function waitServing(address: string, infoHash?: string): Promise<void> {
  for (let i = 0; i < 6000; i++) {
    try {
      const res = await fetch(`http://${address}:${PORT}/${REPO}/`)
      if (res.status === 200 && (!infoHash || (await res.json() as { infoHash: string }).infoHash === infoHash)) return
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 50))
  }
  throw new Error(`${address} never served ${REPO}`)
}

/** The first block of the first file (of the first shard when sharded), over the peer wire. */
async function firstBlock(address: string): Promise<void> {
  const info = await (await fetch(`http://${address}:${PORT}/${REPO}/`)).json() as { infoHash: string; shards?: { infoHash: string }[] }
  const leecher = new WireLeecher(address, PORT, CLIENT_ADDRESS, info.shards?.[0]?.infoHash ?? info.infoHash)
  try {
    await leecher.waitUnchoked()
    await leecher.request(0, 0, 64)
  } finally {
    leecher.close()
  }
}

/** The client's --json summary: the last line (progress events come first). */
function summaryOf(stdout: string): { seconds: number; added: number; bytesReceived: number } {
  return JSON.parse(stdout.trim().split('\n').pop()!) as { seconds: number; added: number; bytesReceived: number }
}

/** The client's own `seconds`: from the resolve stage to the summary. */
function pullSeconds(stdout: string): number {
  return summaryOf(stdout).seconds
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`
}

function ok(b: boolean): string {
  return b ? 'yes' : 'NO'
}

/**
 * The `rm` processes removing trees an earlier run of this bench set aside under `work`
 * (removeInBackground's `trash-*`), stopped (SIGSTOP) until resume(). Each is continued first:
 * a run killed while its gendsync step was timed leaves them stopped (holding the removals'
 * lock), and the next run's gendsync step sets them going again.
 */
function pauseRemovals(work: string): number[] {
  const prefix = join(work, 'trash-')
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let argv: string[]
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')
    } catch {
      continue // gone
    }
    if (basename(argv[0]) !== 'rm' || !argv.some(a => a.startsWith(prefix))) continue
    const pid = Number(name)
    try {
      process.kill(pid, 'SIGCONT')
      process.kill(pid, 'SIGSTOP')
      pids.push(pid)
    } catch {
      // gone, or not ours to signal: left as it is
    }
  }
  return pids
}

function resume(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT')
    } catch {
      // gone
    }
  }
}

function uptime(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
}
