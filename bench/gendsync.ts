import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { machineLoad, median, timeChildOk } from './lib/measure.js'
import { fmtMiB, fmtSeconds, markdownTable } from './lib/table.js'
import { changeFiles, ensureTree, undoUploads, uploadFiles, type GeneratedTree, type Upload, type TreeSpec } from './lib/tree.js'
import { eachArg } from './lib/args.js'
import { describeCli, installedRun, isBundleCli, withRunBundle } from './lib/client-bundle.js'

/**
 * gendsync against the floor of reading and hashing the same bytes (`sha256sum`), on
 * generated mirror-like trees: full generation, a no-change rerun (without a hint, and with an empty
 * `--changed` list: a hinted run's cost before any change of its own), and after 0.05% of files
 * change both without and with the change hint (`--changed`, each from the same previous
 * generation), peak RSS, and the CPU time (user + sys) of every run beside its wall time.
 * Two shapes of change: files rewritten in place at the same size, and uploads (a new version
 * under a new name beside each, the old removed: what a Debian pool sees), which add and
 * remove entries and so move every later entry of a shard.
 *
 *   npm run bench -- gendsync [--dir /tmp/dsync-bench] [--fresh] [--runs 3] [--only mirror-20k|small-200k]
 *                             [--threads N] [--cpu-prof DIR] [--modules] [--cli PATH] [--base-cli PATH]
 *
 * Trees live outside the repo (default /tmp/dsync-bench) and are reused when their shape
 * matches, so reruns skip generation; --fresh regenerates. Both sides are measured with a
 * warm page cache (everything read once first): the fair comparison, since a cold cache
 * measures the disk, not us. The CLI measured is the installed form (package.json's bin: the
 * bundle's sh script `dsync`, run as an operator runs it, or `node dsync.js` for a bundle made
 * before it had one), bundled from this tree's dist/ at the start into a folder of the run's own, as bench swarm does;
 * `--modules` runs tsc's dist/cli/main.js instead (what this bench ran up to session 13). --cli
 * runs another build (a snapshot of dist/, so that a rebuild of the shared tree mid-run cannot
 * break or change the program being measured); --base-cli runs a second build by turns with it,
 * step by step, and prints both and their ratios: give it the same form (a base's
 * dist/bundle/dsync.js, or its dist/cli/main.js with --modules).
 */
const MODULES_CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const REPO = 'bench'
const GIB = 1 << 30

interface Dataset {
  spec: TreeSpec
  /** Issue targets: full <= fullRatio x floor, hinted run <= incrRatio x full, peak RSS under rssBytes. */
  targets: { fullRatio: number; incrRatio: number; rssBytes: number }
}

const DATASETS: Dataset[] = [
  {
    // Most files tens of KB, a long tail into MBs, 1 GiB in all.
    spec: { name: 'mirror-20k', files: 20_000, medianBytes: 16 << 10, sigma: 1.6, minBytes: 200, maxBytes: 64 << 20, totalBytes: GIB, seed: 20 },
    targets: { fullRatio: 1.5, incrRatio: 0.1, rssBytes: GIB },
  },
  {
    // 200k small files, 100-3000 bytes: bench/scale.ts's Debian-pool-shaped tree.
    spec: { name: 'small-200k', files: 200_000, medianBytes: 1200, sigma: 0.8, minBytes: 100, maxBytes: 3000, seed: 2000 },
    targets: { fullRatio: 1.5, incrRatio: 0.1, rssBytes: GIB },
  },
]

interface GendsyncJson {
  hashedFiles: number
  files: number
  seconds: number
  maxRssBytes: number
  changed: boolean
}

interface Options {
  dir: string
  fresh: boolean
  runs: number
  only?: string
  threads?: number
  cpuProf?: string
  cli: string
  /** Also run this build, by turns with --cli (or this checkout's), and print both. */
  baseCli?: string
  /** tsc's modules (dist/cli/main.js) rather than the bundle, for this checkout's build. */
  modules: boolean
}

function parseArgs(args: string[]): Options {
  const o: Options = { dir: '/tmp/dsync-bench', fresh: false, runs: 3, cli: '', modules: false }
  eachArg(args, (a, value) => {
    if (a === '--dir') o.dir = value()
    else if (a === '--fresh') o.fresh = true
    else if (a === '--runs') o.runs = Number(value())
    else if (a === '--only') o.only = value()
    else if (a === '--threads') o.threads = Number(value())
    else if (a === '--cpu-prof') o.cpuProf = value()
    else if (a === '--cli') o.cli = value()
    else if (a === '--base-cli') o.baseCli = value()
    else if (a === '--modules') o.modules = true
    else throw new Error(`unknown argument ${a}`)
  })
  if (!(o.runs >= 1)) throw new Error('--runs must be at least 1')
  if (o.only && !DATASETS.some(d => d.spec.name === o.only)) throw new Error(`no dataset ${o.only} (${DATASETS.map(d => d.spec.name).join(', ')})`)
  return o
}

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args)
  const log = (m: string) => process.stderr.write(m + '\n')
  // The installed form (bench/lib/client-bundle.ts) unless --cli names a build or --modules asks for dist/cli/main.js.
  if (opts.cli || opts.modules) return measure({ ...opts, cli: opts.cli || MODULES_CLI }, log)
  await withRunBundle(ROOT, cli => measure({ ...opts, cli }, log))
}

async function measure(opts: Options, log: (m: string) => void): Promise<void> {
  // A bundle starts sooner than tsc's ~70 modules: a pair of two forms is not like with like.
  if (opts.baseCli && isBundleCli(opts.baseCli) !== isBundleCli(opts.cli)) {
    log(`warning: --base-cli ${opts.baseCli} is not the form measured for this build (${isBundleCli(opts.cli) ? 'bundle' : 'modules'}): the pair is not like with like`)
  }
  console.log(`# gendsync benchmark\n`)
  console.log(`machine: ${availableParallelism()} cores; before start: ${await machineLoad()}\n`)
  for (const ds of DATASETS) {
    if (opts.only && ds.spec.name !== opts.only) continue
    await benchDataset(ds, opts, log)
  }
}

async function benchDataset(ds: Dataset, opts: Options, log: (m: string) => void): Promise<void> {
  const base = join(opts.dir, ds.spec.name)
  const webroot = join(base, 'web')
  const root = join(webroot, REPO)
  log(`[${ds.spec.name}] preparing tree under ${root}`)
  const tree = ensureTree(root, ds.spec, opts.fresh, log)
  log(`[${ds.spec.name}] ${tree.created ? `generated in ${fmtSeconds(tree.seconds)} s` : 'reused existing tree'}: ${tree.files.length} files, ${fmtMiB(tree.bytes)} MiB`)
  const home = makeBenchHome(base, webroot)
  const dsyncDir = join(root, '.dsync')

  // The floor: one sha256sum process over the same files, names batched by xargs.
  const floorCmd = `find . -path ./.dsync -prune -o -type f -print0 | xargs -0 sha256sum > /dev/null`
  log(`[${ds.spec.name}] warming the page cache`)
  await timeChildOk('bash', ['-c', 'find . -path ./.dsync -prune -o -type f -print0 | xargs -0 cat > /dev/null'], { cwd: root })

  const timed = cpuTimer(join(base, 'time.out'))
  // One build, or the base build and this one run by turns (--base-cli), each step of each round
  // for both before the next, so a burst of load from elsewhere hits both alike.
  const sides: Side[] = (opts.baseCli ? [['base', opts.baseCli], ['new', opts.cli]] : [['', opts.cli]]).map(([label, cli]) => ({ label, cli, m: newMeasures() }))
  const gendsync = async (side: Side, label: string, extraNodeArgs: string[] = [], extraArgs: string[] = []): Promise<{ wall: number; cpu: number; json: GendsyncJson }> => {
    // What an operator runs: the bundle's bin where it has one (bench/lib/client-bundle.ts).
    const command = installedRun(side.cli, extraNodeArgs)
    const args = [...command.args, '--home', home, 'gendsync', '--json', ...extraArgs]
    if (opts.threads) args.push('--threads', String(opts.threads))
    const r = await timed(command.cmd, args, undefined, command.env)
    const line = r.stdout.trim().split('\n').filter(l => l.startsWith('{')).pop()
    if (!line) throw new Error(`gendsync printed no JSON line: ${r.stdout}`)
    const json = JSON.parse(line) as GendsyncJson
    side.m.rss.push(json.maxRssBytes)
    log(`[${ds.spec.name}]${side.label ? ` ${side.label}` : ''} ${label}: ${fmtSeconds(r.wall)} s wall (${fmtSeconds(json.seconds)} s in-process, ${fmtSeconds(r.cpu)} s CPU), hashed ${json.hashedFiles}, RSS ${fmtMiB(json.maxRssBytes)} MiB`)
    return { wall: r.wall, cpu: r.cpu, json }
  }

  // Floor and full runs alternate; each build's no-change runs (without and with an empty hint) follow its own full run.
  const emptyHint = join(base, 'empty-hint.txt')
  writeFileSync(emptyHint, '')
  const floor: number[] = []
  const floorCpu: number[] = []
  for (let i = 0; i < opts.runs; i++) {
    const f = await timed('bash', ['-c', floorCmd], root)
    floor.push(f.wall)
    floorCpu.push(f.cpu)
    log(`[${ds.spec.name}] sha256sum #${i + 1}: ${fmtSeconds(f.wall)} s (${fmtSeconds(f.cpu)} s CPU)`)
    for (const side of sides) {
      rmSync(dsyncDir, { recursive: true, force: true })
      const g = await gendsync(side, `full #${i + 1}`)
      if (g.json.hashedFiles !== tree.files.length) throw new Error(`full run hashed ${g.json.hashedFiles} files, expected ${tree.files.length}`)
      side.m.full.push(g.wall)
      side.m.cpu.full.push(g.cpu)
      side.m.fullInProcess.push(g.json.seconds)
      const n = await gendsync(side, `no-change #${i + 1}`)
      if (n.json.hashedFiles !== 0 || n.json.changed) throw new Error(`no-change run hashed ${n.json.hashedFiles} files (changed=${n.json.changed})`)
      side.m.noChange.push(n.wall)
      // The same with an empty hint: what a hinted run costs before any change of its own (start,
      // the previous generation read and checked), the part of a hinted run that does not follow the change.
      const e = await gendsync(side, `no-change, empty --changed #${i + 1}`, [], ['--changed', emptyHint])
      if (e.json.hashedFiles !== 0 || e.json.changed) throw new Error(`empty-hint run hashed ${e.json.hashedFiles} files (changed=${e.json.changed})`)
      side.m.emptyHint.push(e.wall)
    }
  }

  // 0.05% of files changed, rewritten and then uploaded; the same previous generation (a copy of .dsync/) before each run.
  const changeCount = Math.max(1, Math.round(tree.files.length / 2000))
  const previous = join(base, 'previous-dsync')
  const hintFile = join(base, 'changed.txt')
  const restore = () => {
    rmSync(dsyncDir, { recursive: true, force: true })
    cpSync(previous, dsyncDir, { recursive: true })
  }
  type Sink = { incr: number[]; hinted: number[]; cpuIncr: number[]; cpuHinted: number[] }
  /** One round: `change` alters the tree and returns the hint's paths and the files to hash; each build runs without the hint, then with it. */
  const round = async (what: string, i: number, change: () => { hint: string[]; hashed: number }, sink: (m: Measures) => Sink) => {
    rmSync(previous, { recursive: true, force: true })
    cpSync(dsyncDir, previous, { recursive: true })
    const { hint, hashed } = change()
    writeFileSync(hintFile, hint.join('\n') + '\n')
    for (const side of sides) {
      const into = sink(side.m)
      restore()
      const g = await gendsync(side, `${what}: no hint #${i + 1} (${hashed} files)`)
      if (g.json.hashedFiles !== hashed) throw new Error(`${what}: run without hint hashed ${g.json.hashedFiles} files, expected ${hashed}`)
      into.incr.push(g.wall)
      into.cpuIncr.push(g.cpu)
      restore()
      const h = await gendsync(side, `${what}: --changed #${i + 1}`, [], ['--changed', hintFile])
      if (h.json.hashedFiles !== hashed) throw new Error(`${what}: hinted run hashed ${h.json.hashedFiles} files, expected ${hashed}`)
      into.hinted.push(h.wall)
      into.cpuHinted.push(h.cpu)
    }
  }
  for (let i = 0; i < opts.runs; i++) {
    await round('rewritten', i, () => {
      const changed = changeFiles(root, tree.files, changeCount, Date.now() + i)
      return { hint: changed, hashed: changed.length }
    }, m => ({ incr: m.incr, hinted: m.hinted, cpuIncr: m.cpu.incr, cpuHinted: m.cpu.hinted }))
  }
  // The tree is put back after the uploads so that it can be reused.
  const uploads: Upload[] = []
  try {
    for (let i = 0; i < opts.runs; i++) {
      await round('uploaded', i, () => {
        const added = uploadFiles(root, tree.files, changeCount, Date.now() + 1000 + i)
        uploads.push(...added)
        return { hint: added.flatMap(u => [u.old.path, u.added.path]), hashed: added.length }
      }, m => m.uploads)
    }
  } finally {
    // The generation on disk no longer describes the tree: the next run starts with a full one.
    undoUploads(root, tree.files, uploads)
  }

  if (opts.cpuProf) {
    mkdirSync(opts.cpuProf, { recursive: true })
    rmSync(dsyncDir, { recursive: true, force: true })
    await gendsync(sides[sides.length - 1], 'full, --cpu-prof', ['--cpu-prof', '--cpu-prof-dir', join(opts.cpuProf, ds.spec.name)])
  }

  for (const side of sides) {
    printTable(ds, tree, { ...side.m, floor, changeCount }, opts, side)
    printCpu({ ...side.m.cpu, floor: floorCpu })
  }
  if (sides.length === 2) printVersus(sides[0].m, sides[1].m)
  console.log(`\nwhile measuring: ${await machineLoad()}\n`)
}

interface Measures {
  full: number[]
  fullInProcess: number[]
  incr: number[]
  hinted: number[]
  noChange: number[]
  /** No change, `--changed` an empty list: a hinted run's cost before any change. */
  emptyHint: number[]
  rss: number[]
  /** CPU seconds (user + sys) of each run: steadier than wall time on a shared machine. */
  cpu: { full: number[]; incr: number[]; hinted: number[] }
  /** The same count of files replaced by new versions (uploadFiles) instead of rewritten. */
  uploads: { incr: number[]; hinted: number[]; cpuIncr: number[]; cpuHinted: number[] }
}

interface Side {
  /** '' when only one build is measured. */
  label: string
  cli: string
  m: Measures
}

function newMeasures(): Measures {
  return {
    full: [], fullInProcess: [], incr: [], hinted: [], noChange: [], emptyHint: [], rss: [], cpu: { full: [], incr: [], hinted: [] },
    uploads: { incr: [], hinted: [], cpuIncr: [], cpuHinted: [] },
  }
}

/** The new build's medians over the base build's, measured by turns in the same run. */
function printVersus(b: Measures, n: Measures): void {
  const r = (x: number[], y: number[]) => `${(median(y) / median(x)).toFixed(2)}x`
  console.log(`- new / base (medians, same run): full ${r(b.full, n.full)} wall, ${r(b.cpu.full, n.cpu.full)} CPU; no hint ${r(b.incr, n.incr)} wall, ${r(b.cpu.incr, n.cpu.incr)} CPU; --changed ${r(b.hinted, n.hinted)} wall, ${r(b.cpu.hinted, n.cpu.hinted)} CPU; no-change ${r(b.noChange, n.noChange)} wall, with an empty hint ${r(b.emptyHint, n.emptyHint)}; uploads: no hint ${r(b.uploads.incr, n.uploads.incr)} wall, --changed ${r(b.uploads.hinted, n.uploads.hinted)} wall, ${r(b.uploads.cpuHinted, n.uploads.cpuHinted)} CPU.`)
}

/**
 * Runs a command under /usr/bin/time for its CPU seconds (user + sys, children included: the
 * floor's find, xargs and sha256sum); CPU is NaN where /usr/bin/time is not installed.
 */
function cpuTimer(timeFile: string) {
  const haveTime = existsSync('/usr/bin/time')
  return async (cmd: string, args: string[], cwd?: string, env?: NodeJS.ProcessEnv): Promise<{ wall: number; cpu: number; stdout: string }> => {
    if (!haveTime) {
      const r = await timeChildOk(cmd, args, { cwd, env })
      return { wall: r.seconds, cpu: NaN, stdout: r.stdout }
    }
    const r = await timeChildOk('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, cmd, ...args], { cwd, env })
    const [user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
    return { wall: r.seconds, cpu: user + sys, stdout: r.stdout }
  }
}

function printCpu(cpu: { floor: number[]; full: number[]; incr: number[]; hinted: number[] }): void {
  const floor = median(cpu.floor)
  const full = median(cpu.full)
  const list = (xs: number[]) => xs.map(fmtSeconds).join(', ')
  console.log(`- CPU (user + sys, medians): sha256sum ${fmtSeconds(floor)} s, full ${fmtSeconds(full)} s (${(full / floor).toFixed(2)}x the floor's CPU; gendsync spreads it over the cores, the floor is one process), no hint ${fmtSeconds(median(cpu.incr))} s (${(median(cpu.incr) / full * 100).toFixed(1)}% of full), --changed ${fmtSeconds(median(cpu.hinted))} s (${(median(cpu.hinted) / full * 100).toFixed(1)}% of full). Runs: sha256sum ${list(cpu.floor)}; full ${list(cpu.full)}; no hint ${list(cpu.incr)}; --changed ${list(cpu.hinted)}.`)
}

function makeBenchHome(base: string, webroot: string): string {
  const home = join(base, 'home')
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${webroot}\n`)
  writeFileSync(join(home, 'repos', `${REPO}.conf`), `repo=${REPO}\nsave=${join(webroot, REPO)}\ndsync=true\n`)
  return home
}

function printTable(
  ds: Dataset, tree: GeneratedTree,
  m: Measures & { floor: number[]; changeCount: number },
  opts: Options, side: Side,
): void {
  const floor = median(m.floor)
  const full = median(m.full)
  const incr = median(m.incr)
  const hinted = median(m.hinted)
  const peak = Math.max(...m.rss)
  // Each full run against the floor timed just before it, in the same round: a floor from one
  // round beside a full run from another is not like with like on a shared machine, where the
  // floor alone spread 3.68-4.88 s in one run (docs/SCALE.md, session 23). The verdict is on these.
  const pairs = m.full.map((f, i) => f / m.floor[i])
  const ratio = median(pairs)
  const incrShare = incr / full
  const hintedShare = hinted / full
  const upHinted = median(m.uploads.hinted)
  const upShare = upHinted / full
  const t = ds.targets
  const met = [
    `full ${ratio <= t.fullRatio ? 'yes' : 'NO'}`,
    `hinted: rewrites ${hintedShare <= t.incrRatio ? 'yes' : 'NO'}, uploads ${upShare <= t.incrRatio ? 'yes' : 'NO'}`,
    `RSS ${peak < t.rssBytes ? 'yes' : 'NO'}`,
  ].join(', ')
  console.log(`## ${ds.spec.name}${side.label ? ` (${side.label}: ${side.cli})` : ''}\n`)
  console.log(markdownTable(
    ['files', 'bytes', 'sha256sum s', 'gendsync full s', 'ratio (pairs)', `${m.changeCount} changed`, 'no hint s', 'of full', '--changed s', 'of full', 'no-change s', 'peak RSS MiB', 'targets met'],
    [
      [
        tree.files.length, `${tree.bytes} (${fmtMiB(tree.bytes)} MiB)`, fmtSeconds(floor), fmtSeconds(full), `${ratio.toFixed(2)}x`, 'rewritten',
        fmtSeconds(incr), `${(incrShare * 100).toFixed(1)}%`, fmtSeconds(hinted), `${(hintedShare * 100).toFixed(1)}%`, fmtSeconds(median(m.noChange)), fmtMiB(peak), met,
      ],
      [
        '', '', '', '', '', 'uploaded', fmtSeconds(median(m.uploads.incr)), `${(median(m.uploads.incr) / full * 100).toFixed(1)}%`,
        fmtSeconds(upHinted), `${(upShare * 100).toFixed(1)}%`, '', '', '',
      ],
    ],
  ))
  const list = (xs: number[]) => xs.map(fmtSeconds).join(', ')
  console.log(`
- Medians of ${opts.runs} runs, warm page cache on both sides (every file read once before measuring). Wall time around the child process, node start-up included.
- sha256sum: one process, \`find -type f -print0 | xargs -0 sha256sum > /dev/null\` (xargs batches the names into few sha256sum invocations); runs: ${list(m.floor)}.
- gendsync: \`${describeCli(side.cli, MODULES_CLI)} --home H gendsync --json\`${opts.threads ? ` --threads ${opts.threads}` : ' (default threads: one per core)'}, full = .dsync/ deleted first; runs: ${list(m.full)} (in-process ${list(m.fullInProcess)}).
- changed: ${m.changeCount} files (0.05%) rewritten, same size, mtime an hour later; each round runs gendsync without the hint, then puts the previous .dsync/ back and runs \`gendsync --changed LIST\`; hashedFiles checked equal to that count; runs without hint: ${list(m.incr)}; with: ${list(m.hinted)}. no-change runs: ${list(m.noChange)}; no change with an empty \`--changed\` list (a hinted run's part that does not follow the change): ${list(m.emptyHint)}, median ${(median(m.emptyHint) / full * 100).toFixed(1)}% of full.
- uploaded: as many files replaced by a new version each (another name beside it, size within +-10%; the old one removed), the hint naming both paths; hashedFiles checked equal to the count; runs without hint: ${list(m.uploads.incr)}; with: ${list(m.uploads.hinted)}; CPU with: ${list(m.uploads.cpuHinted)}. The tree is put back afterwards.
- full/floor (ratio, the target's): median of the rounds' pairs, each full run against the floor timed just before it: ${pairs.map(x => x.toFixed(2) + 'x').join(', ')} (bench scale's verdict is on the same pairs). Ratio of the medians: ${(full / floor).toFixed(2)}x.
- peak RSS: largest process.resourceUsage().maxRSS over all gendsync runs (the full runs set it). Targets: full <= ${t.fullRatio}x floor, --changed <= ${t.incrRatio * 100}% of full, RSS < ${fmtMiB(t.rssBytes)} MiB (1 GiB).`)
}
