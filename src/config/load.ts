import { existsSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import { DsyncError, ExitCode } from '../errors.js'
import { homePaths, resolveHome, type HomePaths } from './home.js'
import { loadMainConfig, type MainConfig } from './main-config.js'
import { listRepoConfigFiles, loadRepoConfig, type RepoConfig } from './repo-config.js'

export interface Home {
  paths: HomePaths
  main: MainConfig
  repos: RepoConfig[]
  /** One line each, naming file and line; the CLI prints them to stderr. */
  warnings: string[]
}

/**
 * Reads xync.conf and every repo config, and checks what can be checked without touching
 * the repositories' contents: webroot exists, repo names are unique, save= stays inside
 * webroot.
 */
export function loadHome(homeFlag?: string): Home {
  const paths = homePaths(resolveHome(homeFlag))
  if (!existsSync(paths.mainConfig)) throw new DsyncError(ExitCode.config, 'config.noHome', { home: paths.home })
  const main = loadMainConfig(paths.mainConfig)
  const webrootLine = main.origins.get('webroot')?.line ?? 0
  if (!isDirectory(main.webroot)) {
    throw new DsyncError(ExitCode.config, 'config.webrootMissing', { file: main.file, line: webrootLine, path: main.webroot })
  }
  const webrootReal = realpathSync(main.webroot)
  const warnings = [...main.warnings]
  const repos: RepoConfig[] = []
  const byName = new Map<string, RepoConfig>()
  for (const file of listRepoConfigFiles(paths.reposDir)) {
    const repo = loadRepoConfig(file, main.webroot)
    warnings.push(...repo.warnings)
    const other = byName.get(repo.name)
    if (other) {
      throw new DsyncError(ExitCode.config, 'config.duplicateRepo', {
        file, line: repo.origins.get('repo')?.line ?? 0, repo: repo.name, other: other.file,
      })
    }
    if (!inside(webrootReal, realOrSelf(repo.save))) {
      throw new DsyncError(ExitCode.config, 'config.saveOutsideWebroot', {
        file, line: repo.origins.get('save')?.line ?? 0, path: repo.save, webroot: main.webroot,
      })
    }
    byName.set(repo.name, repo)
    repos.push(repo)
  }
  return { paths, main, repos, warnings }
}

/**
 * The published repos named (all published ones when none is named). Naming an unknown or
 * unpublished repo is an error rather than a silent skip: a cron line with a typo must fail.
 */
export function publishedRepos(home: Home, names: string[]): RepoConfig[] {
  const chosen = names.length === 0 ? home.repos.filter(r => r.publish) : names.map(n => findRepo(home, n))
  if (names.length === 0 && chosen.length === 0) {
    throw new DsyncError(ExitCode.config, 'config.noRepos', { dir: home.paths.reposDir })
  }
  for (const repo of chosen) {
    if (!repo.publish) throw new DsyncError(ExitCode.config, 'config.notPublished', { file: repo.file, repo: repo.name })
  }
  return chosen
}

export function findRepo(home: Home, name: string): RepoConfig {
  const repo = home.repos.find(r => r.name === name)
  if (!repo) {
    throw new DsyncError(ExitCode.config, 'config.unknownRepo', {
      repo: name, dir: home.paths.reposDir, known: home.repos.map(r => r.name).join(', ') || '-',
    })
  }
  return repo
}

/** A published repo's folder must exist before it can be scanned. */
export function requireSaveDir(repo: RepoConfig): void {
  if (!isDirectory(repo.save)) {
    throw new DsyncError(ExitCode.config, 'config.saveMissing', {
      file: repo.file, line: repo.origins.get('save')?.line ?? 0, path: repo.save,
    })
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/**
 * The real path of `path`, or, when it does not exist yet (a downstream repo's folder before
 * its first sync), the real path of its nearest existing ancestor with the rest appended:
 * a webroot reached through a symlink must still contain it.
 */
function realOrSelf(path: string): string {
  let existing = resolve(path)
  const rest: string[] = []
  for (;;) {
    try {
      return join(realpathSync(existing), ...rest)
    } catch {
      const parent = dirname(existing)
      if (parent === existing) return resolve(path)
      rest.unshift(basename(existing))
      existing = parent
    }
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel !== '' && rel !== '..' && !rel.startsWith('..' + sep) && !rel.startsWith(sep)
}
