// `npm run bench -- host [--files 20000,200000] [--mb 512] [--leechers 3]`
// 1. time from `dsync service` to the first block served, and the service's RSS, for big repos
//    (and gendsync's time for the same tree, the baseline a re-hash would cost);
// 2. one host serving N libtorrent leechers at once: aggregate upload rate and the host's CPU.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadGeneration } from '../src/host/generation.js'
import { runtimeFiles } from '../src/host/runtime-files.js'
import { readPid } from '../src/util/process.js'
import { CLI } from '../testbed/cli.js'
import { writeManyFiles } from '../testbed/host-tree.js'
import { libtorrentLeech, libtorrentMissing, WireLeecher } from '../testbed/leecher.js'
import { count, eachArg } from './lib/args.js'

const PORT = 47921

interface Options {
  sizes: number[]
  mb: number
  leechers: number
}

function parseArgs(args: string[]): Options {
  const o: Options = { sizes: [20_000, 200_000], mb: 512, leechers: 3 }
  eachArg(args, (a, value) => {
    if (a === '--files') o.sizes = value().split(',').map(n => count('--files', n))
    else if (a === '--mb') o.mb = count(a, value())
    else if (a === '--leechers') o.leechers = count(a, value())
    else throw new Error(`unknown argument ${a}`)
  })
  return o
}

function cli(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, '--home', home, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => (stdout += d))
    child.stderr.on('data', d => (stderr += d))
    child.on('close', code => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

async function must(p: ReturnType<typeof cli>): Promise<string> {
  const r = await p
  if (r.code !== 0) throw new Error(r.stderr.trim())
  return r.stdout
}

export function makeRepo(base: string, address: string): { home: string; save: string } {
  const home = join(base, 'home')
  const save = join(base, 'web', 'big')
  mkdirSync(join(home, 'repos'), { recursive: true })
  mkdirSync(join(home, 'dtp'), { recursive: true })
  mkdirSync(save, { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${join(base, 'web')}\nlisten=${address}\nport=${PORT}\n`)
  writeFileSync(join(home, 'repos', 'big.conf'), `repo=big\nsave=${save}\ndsync=true\n`)
  writeFileSync(join(home, 'dtp', 'list.conf'), '/big\n')
  return { home, save }
}

function procStat(pid: number): { rssMiB: number; hwmMiB: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024, cpuS: (Number(fields[11]) + Number(fields[12])) / ticks }
}

async function startToFirstByte(files: number, address: string): Promise<string[]> {
  const base = mkdtempSync(join(tmpdir(), 'dsync-bench-host-'))
  try {
    const { home, save } = makeRepo(base, address)
    let t = Date.now()
    writeManyFiles(save, files)
    const writeS = (Date.now() - t) / 1000
    const gen = JSON.parse(await must(cli(home, '--json', 'gendsync'))) as { seconds: number; infoHash: string }
    const g = loadGeneration('big', save)
    const last = g.segments.list().filter(s => s.source === 'file').at(-1)!
    t = Date.now()
    await must(cli(home, 'service'))
    const pid = readPid(runtimeFiles(home).pid) ?? NaN
    const user = new WireLeecher(address, PORT, '127.0.4.50', gen.infoHash)
    await user.waitUnchoked(60_000)
    await user.request(last.offset / g.pieceLength, 0, last.length)
    const firstS = (Date.now() - t) / 1000
    user.close()
    const p = procStat(pid)
    await must(cli(home, 'stop-service'))
    return [String(files), writeS.toFixed(1), gen.seconds.toFixed(1), firstS.toFixed(2), p.rssMiB.toFixed(0), p.hwmMiB.toFixed(0)]
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
}

async function manyLeechers(mb: number, leechers: number, address: string): Promise<string[]> {
  const base = mkdtempSync(join(tmpdir(), 'dsync-bench-host-'))
  try {
    const { home, save } = makeRepo(base, address)
    const count = 16
    const each = Math.ceil((mb * 1024 * 1024) / count)
    for (let i = 0; i < count; i++) writeFileSync(join(save, `part${String(i).padStart(2, '0')}.bin`), randomBytes(each))
    await must(cli(home, '--json', 'gendsync'))
    await must(cli(home, 'service'))
    const pid = readPid(runtimeFiles(home).pid) ?? NaN
    const before = procStat(pid)
    const t = Date.now()
    const results = await Promise.all(Array.from({ length: leechers }, (_, i) => libtorrentLeech({
      torrent: join(save, '.dsync', 'big.torrent'), save: join(base, `leecher${i}`), peers: [`${address}:${PORT}`],
      bind: `127.0.4.${11 + i}`, timeout: 600,
    })))
    const seconds = (Date.now() - t) / 1000
    const after = procStat(pid)
    await must(cli(home, 'stop-service'))
    const ok = results.filter(r => r.ok).length
    const bytes = results.reduce((s, r) => s + r.bytes, 0)
    return [String(leechers), `${ok}/${leechers}`, (bytes / 1048576).toFixed(0), seconds.toFixed(1),
      (bytes / 1048576 / seconds).toFixed(1), ((after.cpuS - before.cpuS) / seconds * 100).toFixed(0) + '%', after.hwmMiB.toFixed(0)]
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
}

function table(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padStart(w[i])).join(' | ') + ' |'
  console.log(line(head))
  console.log('|' + w.map(n => '-'.repeat(n + 2)).join('|') + '|')
  for (const r of rows) console.log(line(r))
}

export async function run(args: string[]): Promise<void> {
  const { sizes, mb, leechers } = parseArgs(args)
  console.log('# dsync host: service -> first block served (the last file of the repo), daemon RSS')
  const rows: string[][] = []
  for (const n of sizes) {
    rows.push(await startToFirstByte(n, '127.0.4.2'))
    console.error(`done ${n} files`)
  }
  table(['files', 'write tree s', 'gendsync s (baseline: full hash)', 'service->first block s', 'RSS MiB', 'peak RSS MiB'], rows)
  const missing = libtorrentMissing()
  if (missing) {
    console.log(`\n# ${leechers} leechers: skipped, ${missing}`)
    return
  }
  console.log(`\n# one host, ${leechers} libtorrent leechers at once, ${mb} MiB in 16 files (page cache warm), loopback`)
  table(['leechers', 'complete', 'MiB sent', 'seconds', 'aggregate MiB/s', 'host CPU', 'host peak RSS MiB'], [await manyLeechers(mb, leechers, '127.0.4.3')])
}
