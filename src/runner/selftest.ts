import { accessSync, constants, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { homePaths, resolveHome } from '../config/home.js'
import { loadMainConfig, type MainConfig } from '../config/main-config.js'
import { listRepoConfigFiles, loadRepoConfig, type RepoConfig } from '../config/repo-config.js'
import { upstreamKind } from './upstream.js'
import { listModules, rsyncBinary, runRsync } from './rsync.js'

export interface Check {
  ok: boolean
  detail: string
}

/** One line of `dsync -test`'s table: a config file and what was checked for it. */
export interface TestRow {
  name: string
  file: string
  config: Check
  folders?: Check
  upstream?: Check
}

/**
 * DSYNC's `-test`: every repo config loads, its folders have the permissions a sync needs
 * (save= writable, webroot readable), and its upstream answers (a DTP host's repository
 * info, an rsync daemon's module list). Every row is checked even after a failure.
 */
export async function selfTest(homeFlag?: string): Promise<TestRow[]> {
  const paths = homePaths(resolveHome(homeFlag))
  let main: MainConfig
  try {
    main = loadMainConfig(paths.mainConfig)
  } catch (err) {
    return [{ name: 'xync.conf', file: paths.mainConfig, config: fail(err) }]
  }
  const rows: TestRow[] = [{ name: 'xync.conf', file: main.file, config: { ok: true, detail: 'ok' }, folders: readable(main.webroot) }]
  if (main.runner.statusDir) rows[0].folders = merge(rows[0].folders!, writable(main.runner.statusDir))
  let rsyncChecked: Check | undefined
  for (const file of listRepoConfigFiles(paths.reposDir)) {
    let repo: RepoConfig
    try {
      repo = loadRepoConfig(file, main.webroot)
    } catch (err) {
      rows.push({ name: file.replace(/^.*\//, '').replace(/\.conf$/, ''), file, config: fail(err) })
      continue
    }
    const row: TestRow = { name: repo.name, file, config: { ok: true, detail: 'ok' }, folders: writable(repo.save) }
    const up = upstreamKind(repo, main.runner)
    if (up?.kind === 'rsync') {
      rsyncChecked ??= await rsyncPresent()
      row.upstream = rsyncChecked.ok ? await rsyncAnswers(up.source) : rsyncChecked
    } else if (up?.kind === 'dtp') {
      row.upstream = await swarmAnswers(repo.sources)
    } else {
      row.upstream = { ok: true, detail: repo.publish ? 'published only (no upstream)' : 'no upstream' }
    }
    rows.push(row)
  }
  return rows
}

export function rowOk(r: TestRow): boolean {
  return r.config.ok && (r.folders?.ok ?? true) && (r.upstream?.ok ?? true)
}

function fail(err: unknown): Check {
  return { ok: false, detail: err instanceof Error ? err.message : String(err) }
}

function merge(a: Check, b: Check): Check {
  return a.ok && b.ok ? a : { ok: false, detail: [a, b].filter(c => !c.ok).map(c => c.detail).join('; ') }
}

function readable(dir: string): Check {
  try {
    if (!statSync(dir).isDirectory()) return { ok: false, detail: `${dir}: not a folder` }
    accessSync(dir, constants.R_OK | constants.X_OK)
    return { ok: true, detail: `${dir} readable` }
  } catch (err) {
    return { ok: false, detail: `${dir}: not readable (${(err as NodeJS.ErrnoException).code ?? err})` }
  }
}

/** The folder, or the nearest existing parent a sync would create it in, is writable. */
function writable(dir: string): Check {
  let probe = dir
  for (;;) {
    try {
      if (!statSync(probe).isDirectory()) return { ok: false, detail: `${probe}: not a folder` }
      accessSync(probe, constants.W_OK | constants.X_OK)
      return { ok: true, detail: `${dir} writable` }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' || dirname(probe) === probe) return { ok: false, detail: `${probe}: not writable (${code ?? err})` }
      probe = dirname(probe)
    }
  }
}

async function rsyncPresent(): Promise<Check> {
  try {
    const run = await runRsync(['--version'])
    return run.code === 0 ? { ok: true, detail: 'rsync found' } : { ok: false, detail: `${rsyncBinary()} --version failed` }
  } catch (err) {
    return fail(err)
  }
}

async function rsyncAnswers(url: string): Promise<Check> {
  const module = new URL(url).pathname.split('/').filter(s => s !== '')[0]
  const listed = await listModules(url)
  if (listed.error) return { ok: false, detail: `${url}: ${listed.error}` }
  return listed.modules.includes(module)
    ? { ok: true, detail: `${url}: module ${module} listed` }
    : { ok: false, detail: `${url}: no module "${module}" (has: ${listed.modules.join(', ') || '-'})` }
}

/** A DTP host answers with its repository info and torrent; a magnet link cannot be checked without a swarm. */
async function swarmAnswers(sources: string[]): Promise<Check> {
  const { resolveSource } = await import('../sync/source.js')
  const checks: Check[] = []
  for (const source of sources) {
    if (source.startsWith('magnet:')) {
      checks.push({ ok: true, detail: `${source.slice(0, 40)}...: magnet (found through peers at sync time)` })
      continue
    }
    try {
      await resolveSource(source, () => 'unchecked')
      checks.push({ ok: true, detail: `${source}: answers` })
    } catch (err) {
      checks.push({ ok: false, detail: `${source}: ${(err as Error).message}` })
    }
  }
  return checks.every(c => c.ok) ? { ok: true, detail: checks.map(c => c.detail).join('; ') } : merge(checks.find(c => !c.ok)!, { ok: true, detail: '' })
}
