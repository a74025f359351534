import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateRepo, type GenerateResult } from '../manifest/generate.js'
import { verifyTree } from '../manifest/verify.js'
import { ProgressBar } from '../ui/progress.js'
import { formatBytes } from '../ui/units.js'
import { put, writeSampleRepo } from './sample-repo.js'

export interface DemoOptions {
  log: (line: string) => void
  keep?: boolean
}

/**
 * The embedded demo, on loopback and in a temporary folder: a sample repository is
 * published (data.dsync + torrent + magnet), verified, changed and published again.
 * The swarm part (tracker, three hosts, a new mirror) joins it as those parts land.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'dsync-demo-'))
  const cleanup = () => { if (!opts.keep) rmSync(base, { recursive: true, force: true }) }
  process.once('SIGINT', () => { cleanup(); process.exit(130) })
  try {
    const webroot = join(base, 'mirrors')
    const save = join(webroot, 'demo')
    const home = join(base, 'dxync')
    mkdirSync(join(home, 'repos'), { recursive: true })
    writeFileSync(join(home, 'xync.conf'), `webroot=${webroot}\n`)
    writeFileSync(join(home, 'repos/demo.conf'), `repo=demo\nsave=${save}\ndsync=true\n`)
    opts.log(`demo folder: ${base}`)
    const packages = writeSampleRepo(save)
    opts.log(`sample repository: ${packages.length} packages under ${save}`)

    const first = await publish(save, opts)
    const check = await verifyTree(save)
    opts.log(`verify: ${check.mismatches.length} mismatches over ${check.entries} entries`)

    for (const rel of packages.slice(0, 3)) put(save, rel, `rebuilt ${rel}\n`, new Date('2026-02-01T00:00:00Z'))
    put(save, 'dists/stable/Release', 'Origin: dsync demo\nSuite: stable\nDate: next\n', new Date('2026-02-01T00:00:00Z'))
    opts.log('changed 3 packages and Release; publishing again')
    const second = await publish(save, opts)
    opts.log(`incremental: re-read ${second.hashedFiles} of ${second.files} files; new infohash ${second.infoHash} (was ${first.infoHash})`)
  } finally {
    cleanup()
  }
}

async function publish(save: string, opts: DemoOptions): Promise<GenerateResult> {
  const bar = new ProgressBar()
  const r = await generateRepo({
    name: 'demo', save, trackers: [],
    onProgress: p => { if (p.phase === 'hash') bar.update({ label: 'gendsync demo', ...p }) },
  })
  bar.done()
  opts.log(`gendsync: ${r.entries} entries, ${r.files} files, ${formatBytes(r.bytes)}, piece length ${formatBytes(r.pieceLength)}, ${r.seconds.toFixed(2)}s`)
  opts.log(`magnet: ${r.magnet}`)
  return r
}
