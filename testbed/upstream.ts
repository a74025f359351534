import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, type RunResult } from './cli.js'
import { makeHome, tempDir } from './tree.js'

/** A published repository on disk: its home, folder and current torrent/magnet. */
export interface Upstream {
  home: string
  webroot: string
  save: string
  torrent: string
  magnet(): string
  infoHash: string
  regenerate(): Promise<string>
}

export async function makeUpstream(files: Record<string, string | Buffer>, name = 'rocky'): Promise<Upstream> {
  const h = makeHome(tempDir(), { [name]: files })
  const save = join(h.webroot, name)
  const up: Upstream = {
    home: h.home, webroot: h.webroot, save,
    torrent: join(save, '.dsync', `${name}.torrent`),
    magnet: () => readFileSync(join(save, '.dsync', `${name}.magnet`), 'utf8').trim(),
    infoHash: '',
    async regenerate() {
      const r = await runCli(['--home', h.home, '--json', 'gendsync'])
      assert.equal(r.code, 0, r.stderr)
      up.infoHash = JSON.parse(r.stdout).infoHash
      return up.infoHash
    },
  }
  await up.regenerate()
  return up
}

export interface PullRun extends RunResult {
  summary?: { bytesReceived: number; bytesPerHost: Record<string, number>; added: number; changed: number; removed: number; upToDate: boolean; filesFetched: number; filesCopiedLocally: number; infoHash: string }
}

/** `dsync --json pull` with --peer for each address; the summary line parsed. */
export async function pullCli(source: string, dest: string, peers: string[], extra: string[] = [], env: Record<string, string> = {}): Promise<PullRun> {
  const r = await runCli(['--json', 'pull', ...peers.flatMap(p => ['--peer', p]), ...extra, source, dest], { env })
  const line = r.stdout.trim().split('\n').reverse().find(l => l.includes('"event":"summary"'))
  return { ...r, summary: line ? JSON.parse(line) : undefined }
}
