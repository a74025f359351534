import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { after } from 'node:test'
import { fileURLToPath } from 'node:url'

const SEED_SCRIPT = fileURLToPath(new URL('../../testbed/libtorrent_seed.py', import.meta.url))

export const hasLibtorrent = spawnSync('/usr/bin/python3', ['-c', 'import libtorrent'], { stdio: 'ignore' }).status === 0

export interface Seeder {
  address: string
  kill(): void
  output(): string
}

let nextPort = 21000 + Math.floor(Math.random() * 20000)

/** A free-looking port: tests on different loopback addresses never collide on one. */
export function pickPort(): number {
  nextPort += 7
  return nextPort
}

/**
 * A libtorrent seeder on `host`, serving `torrent` from `savePath`. Resolves once it has
 * checked the data and seeds (or rejects with its output). Killed when the test file ends.
 */
export async function startLibtorrentSeeder(torrent: string, savePath: string, host: string, opts: { uploadLimit?: number; noCheck?: boolean } = {}): Promise<Seeder> {
  const port = pickPort()
  const args = [SEED_SCRIPT, torrent, savePath, host, String(port), String(opts.uploadLimit ?? 0)]
  if (opts.noCheck) args.push('--no-check')
  const child: ChildProcess = spawn('/usr/bin/python3', args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', d => (out += d))
  child.stderr!.on('data', d => (out += d))
  const kill = () => {
    child.stdin?.destroy()
    child.kill('SIGKILL')
  }
  after(kill)
  const end = Date.now() + 60_000
  // "checked 1.000000 N" is followed by "seeding"; any other progress means bad data.
  while (!out.includes('seeding')) {
    if (/checked (?!1\.000000)/.test(out) || child.exitCode !== null || Date.now() > end) {
      kill()
      throw new Error(`libtorrent seeder on ${host} did not start seeding: ${out}`)
    }
    await new Promise(r => setTimeout(r, 50))
  }
  return { address: `${host}:${port}`, kill, output: () => out }
}
