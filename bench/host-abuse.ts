// `npm run bench -- host-abuse [--mb 64] [--seconds 6] [--idle 2000] [--non-readers 10]`
// One well-behaved client's download rate and HTTP latency against a DTP host, unloaded and
// while, at the same time: N peers request blocks and never read them, 2,000 connections hold a
// half-sent HTTP request line (reopened as the host closes them: a slowloris), and one peer sends
// a 2 GB length prefix followed by junk (reconnecting when cut off). Prints the host's RSS and the
// loaded rate as a ratio of the unloaded one (measured before and after the attack, same run).
// Loopback only (127.0.6.x), every attacker bounded in count and time.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { loadGeneration, type Generation } from '../src/host/generation.js'
import { runtimeFiles } from '../src/host/runtime-files.js'
import { readPid } from '../src/util/process.js'
import { runCli } from '../testbed/cli.js'
import { handshakeBytes, WireLeecher } from '../testbed/leecher.js'
import { count, eachArg } from './lib/args.js'
import { makeRepo } from './host.js'
import { markdownTable } from './lib/table.js'

const HOST = '127.0.6.1'
const GOOD = '127.0.6.2'
const PREFIX_PEER = '127.0.6.5'
const PORT = 47921
const BLOCK = 16 * 1024
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

interface Options { mb: number; seconds: number; idle: number; nonReaders: number; rounds: number }
interface Phase { rate: number; lat: number[]; rss: number }
interface AttackCounts { idleOpened: number; prefixConnects: number; nonReadersDropped: number; open: number }

/** Raises this process's descriptor limit (soft, up to the hard one) by re-running under `ulimit -n`. */
function ensureDescriptors(needed: number): boolean {
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const m = /Max open files\s+(\d+)\s+(\d+|unlimited)/.exec(limits)
  const soft = m ? Number(m[1]) : 1024
  if (soft >= needed || process.env.DSYNC_BENCH_ULIMIT) return true
  const hard = m && m[2] !== 'unlimited' ? Number(m[2]) : needed
  const target = Math.min(needed, hard)
  console.error(`ulimit -n is ${soft}; re-running with ${target}`)
  const r = spawnSync('sh', ['-c', `ulimit -n ${target} && exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, DSYNC_BENCH_ULIMIT: '1' },
  })
  process.exitCode = r.status ?? 1
  return false
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : 0
}

/** Downloads blocks round the repository with 64 requests in flight for `seconds`; bytes/s. */
async function download(gen: Generation, infoHash: string, seconds: number): Promise<number> {
  const peer = new WireLeecher(HOST, PORT, GOOD, infoHash)
  await peer.waitUnchoked(30_000)
  const blocks = Math.floor(gen.totalLength / BLOCK) - 1
  let next = 0
  let bytes = 0
  const start = Date.now()
  const end = start + seconds * 1000
  const lane = async () => {
    while (Date.now() < end) {
      const at = (next++ % blocks) * BLOCK
      const got = await peer.request(Math.floor(at / gen.pieceLength), at % gen.pieceLength, BLOCK)
      bytes += got.length
    }
  }
  await Promise.all(Array.from({ length: 64 }, lane))
  const rate = bytes / ((Date.now() - start) / 1000)
  peer.close()
  return rate
}

/** Milliseconds of each GET of the repository's info, one after another, on fresh connections. */
async function httpLatencies(seconds: number): Promise<number[]> {
  const out: number[] = []
  const end = Date.now() + seconds * 1000
  while (Date.now() < end) {
    const t = performance.now()
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: HOST, port: PORT, path: '/big/info.json', localAddress: GOOD, agent: false }, res => {
        res.resume()
        res.on('end', () => resolve())
      })
      req.on('error', reject)
      req.end()
    })
    out.push(performance.now() - t)
    await sleep(50)
  }
  return out
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

/** The attackers, all stopped by `stop()`; counts what the host did to them. */
class Attack {
  private running = true
  private readonly sockets = new Set<Socket>()
  idleOpened = 0
  prefixConnects = 0
  nonReadersDropped = 0

  constructor(private readonly infoHash: string, private readonly opts: Options) {}

  async start(): Promise<void> {
    for (let i = 0; i < this.opts.nonReaders; i++) this.nonReader(`127.0.6.${10 + i}`)
    void this.prefixPeer()
    // 2,000 half-sent request lines from 100 addresses (the host allows 32 per address).
    const perAddress = Math.ceil(this.opts.idle / 100)
    for (let a = 0; a < 100; a++) {
      for (let i = 0; i < perAddress && a * perAddress + i < this.opts.idle; i++) this.idle(`127.0.6.${100 + a}`)
      if (a % 10 === 9) await sleep(50)
    }
  }

  private track(s: Socket): Socket {
    this.sockets.add(s)
    s.on('error', () => undefined)
    s.once('close', () => this.sockets.delete(s))
    return s
  }

  private nonReader(from: string): void {
    const s = this.track(connect({ host: HOST, port: PORT, localAddress: from }))
    s.pause() // never reads a byte the host sends
    s.write(handshakeBytes(this.infoHash))
    let n = 0
    const timer = setInterval(() => {
      // 100 requests of 16 KiB every 20 ms; stop writing when the host stopped reading.
      if (s.destroyed || s.writableLength > 1 << 20) return
      const batch = Buffer.alloc(17 * 100)
      for (let i = 0; i < 100; i++, n++) {
        batch.writeUInt32BE(13, i * 17)
        batch[i * 17 + 4] = 6
        batch.writeUInt32BE(n % 64, i * 17 + 5)
        batch.writeUInt32BE(0, i * 17 + 9)
        batch.writeUInt32BE(BLOCK, i * 17 + 13)
      }
      s.write(batch)
    }, 20)
    s.once('close', () => {
      clearInterval(timer)
      if (!this.running) return
      // Dropped by the host: come back, as an attacker would.
      this.nonReadersDropped++
      setTimeout(() => this.nonReader(from), 100)
    })
  }

  private idle(from: string): void {
    if (!this.running) return
    const s = this.track(connect({ host: HOST, port: PORT, localAddress: from }))
    this.idleOpened++
    s.once('connect', () => s.write('GET /big/info.json HTTP/1.1\r\n'))
    s.resume()
    s.once('close', () => {
      // A slowloris opens another one for each that is closed.
      if (this.running) setTimeout(() => this.idle(from), 100)
    })
  }

  private async prefixPeer(): Promise<void> {
    while (this.running) {
      this.prefixConnects++
      const s = this.track(connect({ host: HOST, port: PORT, localAddress: PREFIX_PEER }))
      s.resume()
      s.write(Buffer.concat([handshakeBytes(this.infoHash), Buffer.from([0x7f, 0xff, 0xff, 0xff, 7])]))
      const junk = randomBytes(64 << 10)
      // ~2 MiB/s of body for the 2 GB message, until the host closes the connection.
      while (this.running && !s.destroyed) {
        s.write(junk)
        await sleep(30)
      }
      await sleep(100)
    }
  }

  get open(): number {
    return this.sockets.size
  }

  stop(): AttackCounts {
    const counts = { idleOpened: this.idleOpened, prefixConnects: this.prefixConnects, nonReadersDropped: this.nonReadersDropped, open: this.open }
    this.running = false
    for (const s of this.sockets) s.destroy()
    return counts
  }
}

/** The attackers run in a worker thread: their 2,000 sockets must not slow the good client's event loop. */
function startAttack(infoHash: string, opts: Options): { ready: Promise<void>; stop(): Promise<AttackCounts> } {
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'attack', infoHash, opts } })
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve())
    worker.once('error', reject)
  })
  return {
    ready,
    stop: () => new Promise(resolve => {
      worker.once('message', (counts: AttackCounts) => {
        void worker.terminate()
        resolve(counts)
      })
      worker.postMessage('stop')
    }),
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'attack') {
  const { infoHash, opts } = workerData as { infoHash: string; opts: Options }
  const attack = new Attack(infoHash, opts)
  await attack.start()
  parentPort!.postMessage('started')
  parentPort!.once('message', () => parentPort!.postMessage(attack.stop()))
}

async function measure(gen: Generation, infoHash: string, seconds: number): Promise<{ rate: number; lat: number[] }> {
  const [rate, lat] = await Promise.all([download(gen, infoHash, seconds), httpLatencies(seconds)])
  return { rate, lat }
}

export async function run(args: string[]): Promise<void> {
  const opts: Options = { mb: 64, seconds: 5, idle: 2000, nonReaders: 10, rounds: 3 }
  eachArg(args, (flag, value) => {
    if (flag === '--mb') opts.mb = count(flag, value())
    else if (flag === '--seconds') opts.seconds = count(flag, value())
    else if (flag === '--idle') opts.idle = count(flag, value(), 0)
    else if (flag === '--non-readers') opts.nonReaders = count(flag, value(), 0)
    else if (flag === '--rounds') opts.rounds = count(flag, value())
    else throw new Error(`unknown option ${flag}`)
  })
  if (!ensureDescriptors(opts.idle + 500)) return
  const base = mkdtempSync(join(tmpdir(), 'dsync-bench-abuse-'))
  try {
    // The host bench's layout: repo "big" on HOST, port 47921, listed.
    const { home, save } = makeRepo(base, HOST)
    for (let i = 0; i < 4; i++) writeFileSync(join(save, `part${i}.bin`), randomBytes((opts.mb << 20) / 4))
    const g = await runCli(['--home', home, '--json', 'gendsync'])
    if (g.code !== 0) throw new Error(g.stderr)
    const infoHash = (JSON.parse(g.stdout.trim().split('\n')[0]) as { infoHash: string }).infoHash
    const s = await runCli(['--home', home, 'service'])
    if (s.code !== 0) throw new Error(s.stderr)
    const pid = readPid(runtimeFiles(home).pid) ?? NaN
    const gen = loadGeneration('big', save)
    await download(gen, infoHash, 1) // page cache and JIT warm

    // Unloaded and attacked phases alternate (U A U A U A U): on a shared machine the load
    // drifts, so each attacked phase is compared with the unloaded ones around it.
    const unloaded: Phase[] = []
    const attacked: Phase[] = []
    let peak = rssMiB(pid)
    let queuedPeak = 0
    let memAtPeak = ''
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMiB(pid))
      void fetch(`http://${HOST}:${PORT}/status.json`).then(r => r.json()).then((st: { queuedBytes: number; memory?: Record<string, number> }) => {
        if (st.queuedBytes >= queuedPeak) {
          queuedPeak = st.queuedBytes
          memAtPeak = Object.entries(st.memory ?? {}).map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(0)}`).join(', ')
        }
      }, () => undefined)
    }, 200)
    let counts: AttackCounts = { idleOpened: 0, prefixConnects: 0, nonReadersDropped: 0, open: 0 }
    let hostConnections = 0
    for (let round = 0; round < opts.rounds; round++) {
      unloaded.push({ ...await measure(gen, infoHash, opts.seconds), rss: rssMiB(pid) })
      const attack = startAttack(infoHash, opts)
      await attack.ready
      await sleep(3000) // let every attacker settle in (non-readers fill their queues)
      attacked.push({ ...await measure(gen, infoHash, opts.seconds), rss: rssMiB(pid) })
      hostConnections = Math.max(hostConnections, ((await (await fetch(`http://${HOST}:${PORT}/status.json`)).json()) as { connections: number }).connections)
      counts = await attack.stop()
      await sleep(1000)
    }
    unloaded.push({ ...await measure(gen, infoHash, opts.seconds), rss: rssMiB(pid) })
    clearInterval(sampler)
    await runCli(['--home', home, 'stop-service'])

    const mib = (r: number) => (r / (1 << 20)).toFixed(1)
    const ms = (v: number) => v.toFixed(1)
    const row = (name: string, p: Phase) => [name, mib(p.rate), ms(pct(p.lat, 0.5)), ms(pct(p.lat, 0.95)), p.lat.length, p.rss.toFixed(0)]
    console.log(`# host-abuse: ${opts.mb} MiB repo; attack = ${opts.nonReaders} non-reading peers, ${opts.idle} slowloris connections (reopened when closed), one 2 GB length prefix (reconnecting); ${opts.seconds} s per phase; attackers in a worker thread`)
    const rows: (string | number)[][] = []
    for (let i = 0; i < unloaded.length; i++) {
      rows.push(row(`unloaded ${i + 1}`, unloaded[i]))
      if (attacked[i]) rows.push(row(`under attack ${i + 1}`, attacked[i]))
    }
    console.log(markdownTable(['phase', 'good client MiB/s', 'HTTP median ms', 'HTTP p95 ms', 'HTTP requests', 'host RSS MiB'], rows))
    // Each attacked phase against the mean of the unloaded phases just before and after it.
    const ratios = attacked.map((a, i) => a.rate / ((unloaded[i].rate + unloaded[i + 1].rate) / 2))
    const ratio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]
    const latRatio = pct(attacked.flatMap(a => a.lat), 0.5) / pct(unloaded.flatMap(u => u.lat), 0.5)
    console.log(`\ngood client under attack: ${ratios.map(r => `${(r * 100).toFixed(0)}%`).join(', ')} of its unloaded rate (median ${(ratio * 100).toFixed(0)}%, target >= 80%); ` +
      `HTTP median latency x${latRatio.toFixed(2)}; host peak RSS ${peak.toFixed(0)} MiB (limit 300)`)
    console.log(`last attack: ${counts.open} attacker sockets open, host saw up to ${hostConnections} connections; slowloris connections opened ${counts.idleOpened}, ` +
      `2 GB-prefix connections ${counts.prefixConnects}, non-reader connections dropped ${counts.nonReadersDropped}`)
    console.log(`peak bytes queued for peers ${mib(queuedPeak)} MiB (host memory then, MiB: ${memAtPeak})`)
    console.log(`load: ${readFileSync('/proc/loadavg', 'utf8').trim()}`)
    if (ratio < 0.8 || peak >= 300) process.exitCode = 1
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
}
