// `npm run bench -- swarm [--rate 200] [--hosts 4] [--only big|many] [--no-rsync] [--no-libtorrent]
//                         [--profile] [--keep-dest] [--cleanup] [--base-cli PATH] [--modules] [--warm-hosts]`
//
// N real `dsync service` hosts, each in its own network namespace with its uplink capped by
// `tc tbf` (200 Mbit/s by default), and a client in another namespace. On (a) one 2 GiB file
// and (b) 20,000 files of ~1 GB, measures in one run:
//   - `dsync pull` from all N hosts: received rate against the sum of the caps;
//   - `rsync -a` from one capped host (rsync --daemon there): the single-upstream baseline;
//   - a libtorrent leecher (python3-libtorrent) on the same N hosts, when installed;
//   - with --base-cli, `dsync pull` of another client build too (same hosts, same run).
// The dsync client measured is the installed form (package.json's bin: dist/bundle/dsync.js),
// bundled from this tree's dist/ at the start into a folder of this run's own (dist/bundle-run-PID,
// removed at the end: dist/bundle/ is left alone, another job may be running it); `--modules`
// runs tsc's dist/cli/main.js instead and bundles nothing
// (what this bench ran up to session 11). Give --base-cli the same form (a base's bundle, made there by `npm run bundle`) for a pair.
// Rates are payload bytes / wall time of the client process (start to exit, everything a
// user waits for). Client and host CPU seconds come from /proc, to say where time goes when a
// target is missed; each dsync pull's note also gives its timeline from its DSYNC_SWARM_TRACE
// (first requests, last piece, commit; samples in which the stage writer held the download:
// bench/lib/swarm-timeline.ts); --profile also writes a V8 CPU profile of the dsync client.
// Trees are generated once under /tmp/dsync-bench-swarm and reused; the page cache is warm
// (nothing is dropped). `--cleanup` removes namespaces left by a killed run and exits.
// `--warm-hosts` runs one unmeasured pull of each dataset first: a run's first pull costs the
// hosts more CPU than the later ones (for a --base-cli pair, so neither build pays it).
// Needs root (network namespaces).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CLI } from '../testbed/cli.js'
import { libtorrentMissing } from '../testbed/leecher.js'
import { makeNetHome, pullSummary, runIn, startNetHost, type NetHost, type NsRun } from '../testbed/net/dsync.js'
import { cleanupLeftovers, NetBed, netnsUnavailable, type NetNode } from '../testbed/net/netns.js'
import { isBundleCli, withRunBundle } from './lib/client-bundle.js'
import { machineLoad, timeChildOk } from './lib/measure.js'
import { swarmTimeline } from './lib/swarm-timeline.js'
import { markdownTable } from './lib/table.js'
import { ensureTree, type TreeSpec } from './lib/tree.js'
import { readPid } from '../src/util/process.js'

const ROOT = '/tmp/dsync-bench-swarm'
const REPO = fileURLToPath(new URL('../../', import.meta.url))
const LT_SCRIPT = fileURLToPath(new URL('../../testbed/lt_leecher.py', import.meta.url))
const GiB = 1 << 30

const DATASETS: Record<string, TreeSpec> = {
  big: { name: 'swarm-big', files: 1, medianBytes: 2 * GiB, sigma: 0, minBytes: 2 * GiB, maxBytes: 2 * GiB, seed: 61 },
  // Debian-pool-like sizes (log-normal around 20 KB, up to 20 MB), scaled to ~1 GB in total.
  many: { name: 'swarm-many', files: 20_000, medianBytes: 20_000, sigma: 1.6, minBytes: 200, maxBytes: 20_000_000, totalBytes: 1e9, seed: 62 },
}

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt
}

const log = (m: string) => process.stderr.write(`${m}\n`)

interface Measured {
  tool: string
  ok: boolean
  bytes: number
  seconds: number
  note: string
}

/** user+sys CPU seconds of a live process, from /proc; undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return undefined
  }
}

function hostPid(h: NetHost): number {
  return readPid(join(h.home, 'run', 'dtp.pid')) ?? NaN
}

function mbit(bytes: number, seconds: number): number {
  return (bytes * 8) / seconds / 1e6
}

/** Sum of file sizes under dir, .dsync excluded: what a client really wrote. */
function treeBytes(dir: string): number {
  let sum = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === '.dsync' || e.name === '.pad') continue
    const p = join(dir, e.name)
    if (e.isDirectory()) sum += treeBytes(p)
    else if (e.isFile()) sum += statSync(p).size
  }
  return sum
}

async function dsyncRun(bed: NetBed, client: NetNode, hosts: NetHost[], repo: string, dest: string, cli: string, label: string, profileDir?: string): Promise<Measured & { clientCpu: number; hostCpu: number[]; perHost: Record<string, number> }> {
  const before = hosts.map(h => cpuSeconds(hostPid(h)) ?? 0)
  const args = ['--json', 'pull', `dtp://${hosts[0].node.address}/${repo}`, dest, ...hosts.slice(1).flatMap(h => ['--peer', h.peer])]
  let pid: number | undefined
  let cpu = 0
  const timer = setInterval(() => {
    if (pid !== undefined) cpu = cpuSeconds(pid) ?? cpu
  }, 200)
  // `ip netns exec` execs the command: the pid it was given is node's. Found by its dest argument.
  const finder = setInterval(() => {
    if (pid !== undefined) return
    for (const p of bed.pids()) {
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dest)) pid = p
      } catch {
        // gone
      }
    }
  }, 100)
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []
  // Each pull traced to a file of its own (its timeline goes in the note; a DSYNC_SWARM_TRACE
  // given to the bench gets every pull's lines appended, as before).
  const trace = `${dest}.trace.jsonl`
  rmSync(trace, { force: true })
  const r: NsRun = await runIn(bed, client, process.execPath, [...profile, cli, ...args], { timeoutMs: 600_000, env: { DSYNC_SWARM_TRACE: trace } })
  clearInterval(timer)
  clearInterval(finder)
  const timeline = swarmTimeline(trace, r.seconds)
  if (process.env.DSYNC_SWARM_TRACE && existsSync(trace)) appendFileSync(process.env.DSYNC_SWARM_TRACE, readFileSync(trace))
  rmSync(trace, { force: true })
  const hostCpu = hosts.map((h, i) => (cpuSeconds(hostPid(h)) ?? 0) - before[i])
  const s = pullSummary(r.stdout)
  const ok = r.code === 0 && s !== undefined
  return {
    tool: `dsync pull (${hosts.length} hosts)${label}`, ok, bytes: s?.bytesReceived ?? 0, seconds: r.seconds,
    note: ok ? `pull's own clock ${Number(s!.seconds).toFixed(1)} s${timeline ? `; ${timeline}` : ''}` : `exit ${r.code}: ${r.stderr.trim().split('\n').pop()}`,
    clientCpu: cpu, hostCpu, perHost: s?.bytesPerHost ?? {},
  }
}

function startRsyncd(bed: NetBed, host: NetHost, base: string, trees: Record<string, string>): ChildProcess {
  const conf = join(base, 'rsyncd.conf')
  const modules = Object.entries(trees).map(([name, path]) =>
    `[${name}]\npath = ${path}\nread only = yes\nuid = root\ngid = root\nexclude = .dsync/\n`).join('\n')
  writeFileSync(conf, `use chroot = no\npid file = ${join(base, 'rsyncd.pid')}\nlog file = ${join(base, 'rsyncd.log')}\n\n${modules}`)
  const [exe, argv] = bed.argv(host.node, 'rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--address=${host.node.address}`, '--port=873'])
  return spawn(exe, argv, { stdio: 'ignore' })
}

async function waitRsyncd(bed: NetBed, client: NetNode, address: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await runIn(bed, client, 'rsync', [`rsync://${address}/`], { timeoutMs: 5000 })
    if (r.code === 0) return
    await new Promise(res => setTimeout(res, 100))
  }
  throw new Error(`rsync --daemon on ${address} did not answer`)
}

async function rsyncRun(bed: NetBed, client: NetNode, host: NetHost, module: string, dest: string): Promise<Measured> {
  mkdirSync(dest, { recursive: true })
  const r = await runIn(bed, client, 'rsync', ['-a', `rsync://${host.node.address}/${module}/`, `${dest}/`], { timeoutMs: 900_000 })
  const ok = r.code === 0
  return {
    tool: 'rsync -a (1 host)', ok, bytes: ok ? treeBytes(dest) : 0, seconds: r.seconds,
    note: ok ? 'rsync daemon on one capped host' : `exit ${r.code}: ${r.stderr.trim().split('\n').pop()}`,
  }
}

async function libtorrentRun(bed: NetBed, client: NetNode, hosts: NetHost[], torrent: string, dest: string): Promise<Measured> {
  mkdirSync(dest, { recursive: true })
  const job = { torrent, save: dest, peers: hosts.map(h => h.peer), bind: client.address, timeout: 600 }
  const r = await runIn(bed, client, '/usr/bin/python3', [LT_SCRIPT, JSON.stringify(job)], { timeoutMs: 700_000 })
  let res: { ok: boolean; bytes: number; error: string | null } | undefined
  try {
    res = JSON.parse(r.stdout.trim().split('\n').pop()!)
  } catch {
    // reported below
  }
  const ok = r.code === 0 && res?.ok === true
  // libtorrent's total_payload_download counts the BEP 47 pad bytes too (it never receives
  // them), so the rate is taken on the file bytes it wrote, as for the other clients.
  return {
    tool: `libtorrent ${ltVersion()} (${hosts.length} hosts)`, ok, bytes: ok ? treeBytes(dest) : 0, seconds: r.seconds,
    note: ok ? `python3-libtorrent, TCP, same hosts; its payload counter ${((res?.bytes ?? 0) / 1e6).toFixed(0)} MB` : `failed: ${res?.error ?? r.stderr.trim().split('\n').pop()}`,
  }
}

let ltv: string | undefined
function ltVersion(): string {
  if (ltv === undefined) {
    try {
      ltv = execFileSync('/usr/bin/python3', ['-c', 'import libtorrent; print(libtorrent.version)'], { encoding: 'utf8' }).trim()
    } catch {
      ltv = '?'
    }
  }
  return ltv
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--cleanup')) {
    const gone = cleanupLeftovers(args.includes('--all'))
    log(gone.length ? `removed ${gone.length} namespaces: ${gone.join(', ')}` : 'no leftover namespaces')
    return
  }
  const why = netnsUnavailable()
  if (why) {
    log(`swarm bench skipped: ${why}`)
    process.exitCode = 2
    return
  }
  const rate = Number(arg(args, 'rate', '200'))
  const nHosts = Number(arg(args, 'hosts', '4'))
  const only = arg(args, 'only', '')
  const names = Object.keys(DATASETS).filter(n => !only || only.split(',').includes(n))
  const withRsync = !args.includes('--no-rsync')
  const ltMissing = args.includes('--no-libtorrent') ? 'disabled with --no-libtorrent' : libtorrentMissing()
  const started = performance.now()
  // The installed form (bench/lib/client-bundle.ts) unless `--modules` asks for dist/cli/main.js.
  if (args.includes('--modules')) return measure(args, CLI, rate, nHosts, names, withRsync, ltMissing, started)
  await withRunBundle(REPO, cli => measure(args, cli, rate, nHosts, names, withRsync, ltMissing, started))
}

async function measure(args: string[], cli: string, rate: number, nHosts: number, names: string[], withRsync: boolean, ltMissing: string | undefined, started: number): Promise<void> {
  mkdirSync(ROOT, { recursive: true })
  const saves: Record<string, string> = {}
  const genLines: string[] = []
  for (const name of names) {
    const save = join(ROOT, name)
    log(`tree ${name}: generating or reusing ${save}`)
    const tree = ensureTree(save, DATASETS[name], false, log)
    saves[name] = save
    genLines.push(`${name}: ${tree.files.length} files, ${(tree.bytes / 1e9).toFixed(3)} GB (${tree.bytes} B), ${tree.created ? `generated in ${tree.seconds.toFixed(0)} s` : 'reused'}`)
  }

  const base = join(ROOT, `run-${process.pid}`)
  rmSync(base, { recursive: true, force: true })
  mkdirSync(base, { recursive: true })
  const bed = NetBed.create({ hosts: nHosts, clients: 1, hostRateMbit: rate })
  const client = bed.clients[0]
  const results: Record<string, Measured[]> = {}
  const profiles: string[] = []
  try {
    const hosts = bed.hosts.map(node => makeNetHome(base, node, names.map(n => saves[n])))
    // One gendsync for every host: they all serve the same folders, data.dsync lives there.
    const g = await timeChildOk(process.execPath, [CLI, '--home', hosts[0].home, '--json', 'gendsync'])
    for (const line of g.stdout.trim().split('\n')) {
      const j = JSON.parse(line) as { repo: string; infoHash: string; seconds: number; hashedFiles?: number }
      genLines.push(`gendsync ${j.repo}: infohash ${j.infoHash}, ${j.seconds.toFixed(1)} s`)
    }
    for (const h of hosts) await startNetHost(bed, h)
    const rsyncd = withRsync ? startRsyncd(bed, hosts[0], base, saves) : undefined
    if (withRsync) await waitRsyncd(bed, client, hosts[0].node.address)

    for (const name of names) {
      const rows: Measured[] = (results[name] = [])
      const dest = (tool: string) => {
        const d = join(ROOT, `dest-${process.pid}-${name}-${tool}`)
        rmSync(d, { recursive: true, force: true })
        return d
      }
      if (args.includes('--warm-hosts')) {
        // A run's first pull costs the hosts more CPU than its second (`many`, session 14, 17
        // runs: 1.4-4.0 s a host against 1.0-2.3 s): whichever build's pull comes first pays
        // it, and the second was the faster in 12 of the 17. Not measured; noted.
        log(`${name}: warm-up pull (not measured)`)
        const w = await dsyncRun(bed, client, hosts, name, dest('warm'), cli, '')
        rmSync(join(ROOT, `dest-${process.pid}-${name}-warm`), { recursive: true, force: true })
        genLines.push(`${name}: hosts warmed by an unmeasured pull first (${w.ok ? `${w.seconds.toFixed(1)} s, host CPU ${w.hostCpu.map(c => c.toFixed(1)).join('/')} s` : 'FAILED'})`)
      }
      log(`${name}: dsync pull from ${nHosts} hosts`)
      const profDir = args.includes('--profile') ? join(ROOT, `prof-${process.pid}-${name}`) : undefined
      const d = await dsyncRun(bed, client, hosts, name, dest('dsync'), cli, cli === CLI ? ', modules' : '', profDir)
      rows.push(d)
      const perHost = Object.entries(d.perHost).map(([h, b]) => `${h.split(':')[0]} ${(b / 1e6).toFixed(0)} MB`).join(', ')
      d.note += `; client CPU ${d.clientCpu.toFixed(1)} s; host CPU ${d.hostCpu.map(c => c.toFixed(1)).join('/')} s; per host: ${perHost}`
      if (profDir && existsSync(profDir)) profiles.push(...readdirSync(profDir).map(f => join(profDir, f)))
      if (!args.includes('--keep-dest')) rmSync(join(ROOT, `dest-${process.pid}-${name}-dsync`), { recursive: true, force: true })

      const baseCli = arg(args, 'base-cli', '')
      if (baseCli) {
        log(`${name}: dsync pull of another build (${baseCli}) from ${nHosts} hosts`)
        // A bundle starts ~0.25 s sooner than tsc's modules (`many`): a pair of two forms is not like with like.
        const formsDiffer = (cli === CLI) !== !isBundleCli(baseCli)
        if (formsDiffer) log(`${name}: warning: --base-cli ${baseCli} is not the form measured for this build (${cli === CLI ? 'modules' : 'bundle'}): the pair is not like with like`)
        const b = await dsyncRun(bed, client, hosts, name, dest('base'), baseCli, `, ${baseCli}${formsDiffer ? ', OTHER FORM' : ''}`)
        b.note += `; client CPU ${b.clientCpu.toFixed(1)} s; host CPU ${b.hostCpu.map(c => c.toFixed(1)).join('/')} s`
        rows.push(b)
        rmSync(join(ROOT, `dest-${process.pid}-${name}-base`), { recursive: true, force: true })
      }
      if (withRsync) {
        log(`${name}: rsync -a from one host`)
        rows.push(await rsyncRun(bed, client, hosts[0], name, dest('rsync')))
        rmSync(join(ROOT, `dest-${process.pid}-${name}-rsync`), { recursive: true, force: true })
      }
      if (!ltMissing) {
        log(`${name}: libtorrent leecher from ${nHosts} hosts`)
        rows.push(await libtorrentRun(bed, client, hosts, join(saves[name], '.dsync', `${name}.torrent`), dest('lt')))
        rmSync(join(ROOT, `dest-${process.pid}-${name}-lt`), { recursive: true, force: true })
      }
    }
    rsyncd?.kill()
  } finally {
    bed.destroy()
    rmSync(base, { recursive: true, force: true, maxRetries: 3 })
  }

  const caps = rate * nHosts
  const table: (string | number)[][] = []
  for (const [name, rows] of Object.entries(results)) {
    const rs = rows.find(r => r.tool.startsWith('rsync') && r.ok)
    const lt = rows.find(r => r.tool.startsWith('libtorrent') && r.ok)
    for (const r of rows) {
      const m = r.ok ? mbit(r.bytes, r.seconds) : 0
      table.push([
        name, r.tool, r.ok ? 'yes' : 'NO', (r.bytes / 1e6).toFixed(0), r.seconds.toFixed(1), m.toFixed(0),
        `${((m / caps) * 100).toFixed(1)}%`,
        rs && r.ok ? `${(m / mbit(rs.bytes, rs.seconds)).toFixed(2)}x` : '-',
        lt && r.ok ? `${(m / mbit(lt.bytes, lt.seconds)).toFixed(2)}x` : '-',
        r.note,
      ])
    }
  }
  process.stdout.write(`\nswarm: ${nHosts} hosts, uplinks capped at ${rate} Mbit/s each (tc tbf), sum of caps ${caps} Mbit/s; client uncapped; page cache warm\n`)
  process.stdout.write(`  dsync client: ${cli}${cli === CLI ? ' (tsc output, --modules)' : ' (the installed bundle)'}\n`)
  for (const l of genLines) process.stdout.write(`  ${l}\n`)
  if (ltMissing) process.stdout.write(`  libtorrent leecher not run: ${ltMissing}\n`)
  process.stdout.write(`${markdownTable(['data', 'client', 'done', 'MB', 'seconds', 'Mbit/s', 'of caps', 'vs rsync', 'vs libtorrent', 'notes'], table)}\n`)
  process.stdout.write(`target: dsync >= 90% of ${caps} Mbit/s (${(caps * 0.9).toFixed(0)} Mbit/s) on both datasets, and >= libtorrent\n`)
  if (profiles.length) process.stdout.write(`CPU profiles of the dsync client: ${profiles.join(', ')} (kept; open in Chrome devtools)\n`)
  process.stdout.write(`${await machineLoad()}\nbench total ${((performance.now() - started) / 1000).toFixed(0)} s\n`)
}
