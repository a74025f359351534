// `npm run bench -- tracker [--seconds S] [--peers N] [--torrents N] [--no-opentracker]`
//
// Announces/s over UDP and HTTP and memory per peer, for our tracker beside stock
// bittorrent-tracker 11 (and opentracker, when /usr/bin/opentracker exists), in one run on
// loopback. Each tracker runs alone in a child process; the load comes from a worker
// thread. Every tracker first gets the same N peers over T torrents (UDP "started"
// announces from 10 source addresses), then is measured with "update" announces from
// those peers for S seconds per transport. Server CPU time is read from /proc so the
// announces per server CPU-second are shown too (the machine is shared: wall-clock
// rates move with other load; per-CPU-second rates move less).
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { count, eachArg } from './lib/args.js'

const HOST = '127.0.0.1'
const SOURCES = Array.from({ length: 10 }, (_, i) => `127.0.0.${11 + i}`)
const OPENTRACKER = '/usr/bin/opentracker'
const SELF = fileURLToPath(import.meta.url)

type Kind = 'ours' | 'stock' | 'opentracker'

interface LoadJob {
  transport: 'udp' | 'http'
  phase: 'preload' | 'steady'
  port: number
  peers: number
  torrents: number
  seconds: number
}

interface LoadResult {
  done: number
  lost: number
  seconds: number
  cpuSeconds: number
}

// ---------------------------------------------------------------- peers

function infoHashes(torrents: number): Buffer[] {
  return Array.from({ length: torrents }, (_, t) => createHash('sha1').update(`bench-${t}`).digest())
}

/** Peer p announces from SOURCES[p % 10] with port 1024 + p/10 into torrent p % torrents. */
function peerOf(p: number, torrents: number): { source: number; port: number; torrent: number } {
  return { source: p % SOURCES.length, port: 1024 + Math.floor(p / SOURCES.length), torrent: p % torrents }
}

// ---------------------------------------------------------------- load generator (worker)

async function loadWorker(job: LoadJob): Promise<LoadResult> {
  const hashes = infoHashes(job.torrents)
  const cpu0 = process.cpuUsage()
  const t0 = Date.now()
  const r = job.transport === 'udp' ? await udpLoad(job, hashes) : await httpLoad(job, hashes)
  const cpu = process.cpuUsage(cpu0)
  return { ...r, seconds: (Date.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
}

/** Peers of one source address, in order. */
function peersOfSource(source: number, job: LoadJob): number[] {
  const out: number[] = []
  for (let p = source; p < job.peers; p += SOURCES.length) out.push(p)
  return out
}

async function udpLoad(job: LoadJob, hashes: Buffer[]): Promise<{ done: number; lost: number }> {
  const WINDOW = 128
  let done = 0
  let lost = 0
  const deadline = Date.now() + job.seconds * 1000
  await Promise.all(SOURCES.map(async (source, s) => {
    const sock = createSocket('udp4')
    await new Promise<void>(resolve => sock.bind(0, source, () => resolve()))
    const id = await udpConnectId(sock, job.port)
    const mine = peersOfSource(s, job)
    const packet = (p: number, tx: number): Buffer => {
      const { port, torrent } = peerOf(p, job.torrents)
      const b = Buffer.alloc(98)
      id.copy(b, 0)
      b.writeUInt32BE(1, 8)
      b.writeUInt32BE(tx, 12)
      hashes[torrent].copy(b, 16)
      b.write(`-BN0001-${String(p).padStart(12, '0')}`, 36, 'latin1')
      b.writeUInt32BE(1000, 68) // left
      b.writeUInt32BE(job.phase === 'preload' ? 2 : 0, 80)
      b.writeInt32BE(50, 92)
      b.writeUInt16BE(port, 96)
      return b
    }
    const inflight = new Map<number, { p: number; at: number }>()
    let next = 0
    let tx = s << 24
    const pending = job.phase === 'preload' ? mine.slice() : null
    const send = (p: number): void => {
      tx = (tx + 1) >>> 0
      inflight.set(tx, { p, at: Date.now() })
      sock.send(packet(p, tx), job.port, HOST)
    }
    const nextPeer = (): number | undefined => {
      if (pending) return pending.length ? pending.pop() : undefined
      return mine[Math.floor(Math.random() * mine.length)]
    }
    await new Promise<void>(resolve => {
      const fill = (): void => {
        while (inflight.size < WINDOW && Date.now() < deadline) {
          const p = nextPeer()
          if (p === undefined) break
          send(p)
          next++
        }
        if (inflight.size === 0) finish()
      }
      sock.on('message', msg => {
        const t = msg.readUInt32BE(4)
        if (!inflight.delete(t)) return
        if (msg.readUInt32BE(0) === 1) done++
        else lost++
        fill()
      })
      // Resend what got no answer (a full socket buffer drops packets).
      const timer = setInterval(() => {
        const old = Date.now() - 500
        for (const [t, v] of inflight) {
          if (v.at < old) {
            inflight.delete(t)
            lost++
            if (pending) pending.push(v.p)
          }
        }
        fill()
      }, 100)
      const finish = (): void => {
        clearInterval(timer)
        resolve()
      }
      fill()
    })
    sock.close()
  }))
  return { done, lost }
}

function udpConnectId(sock: Socket, port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const b = Buffer.alloc(16)
    b.write('0000041727101980', 0, 'hex')
    b.writeUInt32BE(0xabcdef, 12)
    let tries = 0
    const timer = setInterval(() => {
      if (++tries > 20) {
        clearInterval(timer)
        reject(new Error('no UDP connect reply'))
      } else sock.send(b, port, HOST)
    }, 250)
    sock.once('message', msg => {
      clearInterval(timer)
      resolve(Buffer.from(msg.subarray(8, 16)))
    })
    sock.send(b, port, HOST)
  })
}

/** Pipelined GETs on keep-alive connections; a server that closes after each reply gets new connections. */
async function httpLoad(job: LoadJob, hashes: Buffer[]): Promise<{ done: number; lost: number }> {
  const CONNECTIONS_PER_SOURCE = 4
  const WINDOW = 8
  const escaped = hashes.map(h => [...h].map(x => '%' + x.toString(16).padStart(2, '0')).join(''))
  const deadline = Date.now() + job.seconds * 1000
  let done = 0
  let lost = 0
  const request = (p: number): string => {
    const { port, torrent } = peerOf(p, job.torrents)
    const peerId = `-BN0001-${String(p).padStart(12, '0')}`
    return `GET /announce?info_hash=${escaped[torrent]}&peer_id=${peerId}&port=${port}&uploaded=0&downloaded=0&left=1000&compact=1&numwant=50 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`
  }
  const runConnection = (s: number, mine: number[]): Promise<void> => new Promise(resolve => {
    const open = (): void => {
      if (Date.now() >= deadline) return resolve()
      const sock = connect({ host: HOST, port: job.port, localAddress: SOURCES[s] })
      sock.setNoDelay(true)
      let inflight = 0
      let buf = Buffer.alloc(0)
      const fill = (): void => {
        let out = ''
        while (inflight < WINDOW && Date.now() < deadline) {
          out += request(mine[Math.floor(Math.random() * mine.length)])
          inflight++
        }
        if (out) sock.write(out)
        else if (inflight === 0) sock.end()
      }
      sock.on('connect', fill)
      sock.on('data', d => {
        buf = buf.length ? Buffer.concat([buf, d]) : d
        for (;;) {
          const end = buf.indexOf('\r\n\r\n')
          if (end < 0) break
          const head = buf.toString('latin1', 0, end)
          const m = /content-length:\s*(\d+)/i.exec(head)
          const len = m ? Number(m[1]) : 0
          if (buf.length < end + 4 + len) break
          if (/^HTTP\/1\.\d 200/.test(head)) done++
          else lost++
          inflight--
          buf = buf.subarray(end + 4 + len)
        }
        fill()
      })
      sock.on('error', () => {})
      sock.on('close', () => {
        lost += Math.max(0, inflight - 0)
        open()
      })
    }
    open()
  })
  const jobs: Promise<void>[] = []
  for (let s = 0; s < SOURCES.length; s++) {
    const mine = peersOfSource(s, job)
    for (let c = 0; c < CONNECTIONS_PER_SOURCE; c++) jobs.push(runConnection(s, mine))
  }
  await Promise.all(jobs)
  return { done, lost }
}

function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(SELF, { workerData: { role: 'load', job } })
    w.once('message', resolve)
    w.once('error', reject)
  })
}

// ---------------------------------------------------------------- servers (child processes)

async function serve(kind: 'ours' | 'stock'): Promise<void> {
  const send = (m: object): void => void process.send!(m)
  let port: number
  if (kind === 'ours') {
    const { startTracker } = await import('../tracker/server.js')
    const tr = await startTracker({
      port: 0, listen: HOST, http: true, udp: true, ws: false, interval: 1800, rateLimit: 0, policy: { private: false },
    })
    port = tr.port
  } else {
    const { default: Server } = await import('bittorrent-tracker/server')
    const server = new Server({ http: true, udp: true, ws: false, stats: false, interval: 1800 * 1000 })
    port = 20000 + Math.floor(Math.random() * 20000)
    // Stock's listen(port, '127.0.0.1') fails on its udp6 socket: name each socket's address.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      ;(server.listen as unknown as (p: number, h: object, cb: () => void) => void)(port, { http: HOST, udp: HOST, udp6: '::1' }, () => resolve())
    })
  }
  send({ port })
  process.on('message', () => {
    globalThis.gc?.()
    send({ heap: process.memoryUsage().heapUsed })
  })
}

interface Running {
  kind: Kind
  port: number
  child: ChildProcess
  heap(): Promise<number>
  stop(): void
  cleanup?: () => void
}

async function startServer(kind: Kind, torrents: number): Promise<Running> {
  if (kind === 'opentracker') return startOpentracker(torrents)
  const child = spawn(process.execPath, ['--expose-gc', SELF, 'serve', kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', m => resolve((m as { port: number }).port))
    child.once('exit', code => reject(new Error(`${kind} tracker exited (${code})`)))
  })
  return {
    kind, port, child,
    heap: () => new Promise(resolve => {
      child.once('message', m => resolve((m as { heap: number }).heap))
      child.send('heap')
    }),
    stop: () => child.kill('SIGKILL'),
  }
}

async function startOpentracker(torrents: number): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'dsync-bench-ot-'))
  // Debian builds opentracker with a whitelist: list the bench torrents.
  writeFileSync(join(dir, 'whitelist.txt'), infoHashes(torrents).map(h => h.toString('hex')).join('\n') + '\n')
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn(OPENTRACKER, ['-i', HOST, '-p', String(port), '-P', String(port), '-d', dir, '-w', 'whitelist.txt', '-u', 'nobody'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] })
  await new Promise(r => setTimeout(r, 1000))
  if (child.exitCode !== null) throw new Error(`opentracker exited (${child.exitCode})`)
  return {
    kind: 'opentracker', port, child,
    heap: async () => rssBytes(child.pid!),
    stop: () => child.kill('SIGKILL'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, clock ticks
}

// ---------------------------------------------------------------- orchestration

interface Measured {
  kind: Kind
  udp: number
  udpPerCpu: number
  http: number
  httpPerCpu: number
  bytesPerPeer: number
  memoryKind: string
  genCpu: { udp: number; http: number }
}

async function measure(kind: Kind, peers: number, torrents: number, seconds: number): Promise<Measured> {
  const server = await startServer(kind, torrents)
  try {
    const before = await server.heap()
    const pre = await runLoad({ transport: 'udp', phase: 'preload', port: server.port, peers, torrents, seconds: 120 })
    await new Promise(r => setTimeout(r, 200))
    const after = await server.heap()
    const rates: Record<'udp' | 'http', { rate: number; perCpu: number; gen: number }> = {
      udp: { rate: 0, perCpu: 0, gen: 0 }, http: { rate: 0, perCpu: 0, gen: 0 },
    }
    for (const transport of ['udp', 'http'] as const) {
      const c0 = cpuSeconds(server.child.pid!)
      const r = await runLoad({ transport, phase: 'steady', port: server.port, peers, torrents, seconds })
      const cpu = cpuSeconds(server.child.pid!) - c0
      rates[transport] = { rate: r.done / r.seconds, perCpu: cpu > 0 ? r.done / cpu : 0, gen: r.cpuSeconds / r.seconds }
    }
    process.stderr.write(`  ${kind}: preloaded ${pre.done} peers in ${pre.seconds.toFixed(1)} s (${pre.lost} resent)\n`)
    return {
      kind,
      udp: rates.udp.rate, udpPerCpu: rates.udp.perCpu,
      http: rates.http.rate, httpPerCpu: rates.http.perCpu,
      bytesPerPeer: (after - before) / peers,
      memoryKind: kind === 'opentracker' ? 'RSS' : 'heap',
      genCpu: { udp: rates.udp.gen, http: rates.http.gen },
    }
  } finally {
    server.stop()
    server.cleanup?.()
  }
}

interface Options {
  seconds: number
  peers: number
  torrents: number
  opentracker: boolean
}

function parseArgs(args: string[]): Options {
  const o: Options = { seconds: 5, peers: 100_000, torrents: 10_000, opentracker: true }
  eachArg(args, (a, value) => {
    if (a === '--seconds') o.seconds = count(a, value())
    else if (a === '--peers') o.peers = count(a, value())
    else if (a === '--torrents') o.torrents = count(a, value())
    else if (a === '--no-opentracker') o.opentracker = false
    else throw new Error(`unknown argument ${a}`)
  })
  return o
}

export async function run(args: string[]): Promise<void> {
  const { seconds, peers, torrents, opentracker } = parseArgs(args)
  const kinds: Kind[] = ['ours', 'stock']
  if (existsSync(OPENTRACKER) && opentracker) kinds.push('opentracker')
  else process.stderr.write(`(${OPENTRACKER} not installed: opentracker column skipped)\n`)
  process.stderr.write(`tracker bench: ${peers} peers over ${torrents} torrents, ${seconds} s per transport, loopback, 1 load worker\n`)
  const results: Measured[] = []
  for (const kind of kinds) results.push(await measure(kind, peers, torrents, seconds))
  const by = (k: Kind): Measured | undefined => results.find(r => r.kind === k)
  const ours = by('ours')!
  const stock = by('stock')!
  const ot = by('opentracker')
  const n = (x: number): string => Math.round(x).toLocaleString('en-US')
  const rows = [
    ['metric', 'ours', 'stock bittorrent-tracker', ...(ot ? ['opentracker'] : []), 'ours / stock'],
    ['UDP announces/s', n(ours.udp), n(stock.udp), ...(ot ? [n(ot.udp)] : []), (ours.udp / stock.udp).toFixed(2) + 'x'],
    ['UDP announces per server CPU-s', n(ours.udpPerCpu), n(stock.udpPerCpu), ...(ot ? [n(ot.udpPerCpu)] : []), (ours.udpPerCpu / stock.udpPerCpu).toFixed(2) + 'x'],
    ['HTTP announces/s', n(ours.http), n(stock.http), ...(ot ? [n(ot.http)] : []), (ours.http / stock.http).toFixed(2) + 'x'],
    ['HTTP announces per server CPU-s', n(ours.httpPerCpu), n(stock.httpPerCpu), ...(ot ? [n(ot.httpPerCpu)] : []), (ours.httpPerCpu / stock.httpPerCpu).toFixed(2) + 'x'],
    ['memory bytes/peer', `${n(ours.bytesPerPeer)} (heap)`, `${n(stock.bytesPerPeer)} (heap)`, ...(ot ? [`${ot.bytesPerPeer.toFixed(1)} (RSS growth)`] : []), (ours.bytesPerPeer / stock.bytesPerPeer).toFixed(2) + 'x'],
    ['load generator CPU (udp/http)', ...results.map(r => `${r.genCpu.udp.toFixed(2)} / ${r.genCpu.http.toFixed(2)}`), ''],
  ]
  const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)))
  for (const [i, r] of rows.entries()) {
    console.log('| ' + r.map((cell, c) => cell.padEnd(widths[c])).join(' | ') + ' |')
    if (i === 0) console.log('|' + widths.map(w => '-'.repeat(w + 2)).join('|') + '|')
  }
}

// ---------------------------------------------------------------- entry points

if (!isMainThread && (workerData as { role?: string })?.role === 'load') {
  loadWorker((workerData as { job: LoadJob }).job).then(r => parentPort!.postMessage(r))
} else if (isMainThread && process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url && process.argv[2] === 'serve') {
  void serve(process.argv[3] as 'ours' | 'stock')
}
