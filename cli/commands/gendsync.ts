import type { Command } from 'commander'
import { RANGES } from '../../src/config/defaults.js'
import { publishedRepos, requireSaveDir } from '../../src/config/load.js'
import { readAheadGeneration } from '../../src/publish/read-ahead.js'
import { t } from '../../src/i18n/index.js'
import { ProgressBar } from '../../src/ui/progress.js'
import { formatBytes } from '../../src/ui/units.js'
import { globals, intFlag, openHome, printJson, warn } from '../context.js'

export function registerGendsync(program: Command): void {
  program
    .command('gendsync')
    .description("build each published repo's .dsync/data.dsync, .torrent and magnet link (incremental)")
    .argument('[repo...]', 'repositories to generate (default: every repo with dsync=true)')
    .option('--threads <n>', 'hashing threads (default: one per core, at most 8)', intFlag('--threads', RANGES.threads))
    .option('--changed <file>', "paths changed since the last run, one per line, or rsync --itemize-changes output ('-': stdin); only those are read")
    .action(async (names: string[], opts: { threads?: number; changed?: string }, cmd: Command) => {
      const g = globals(cmd)
      const home = openHome(g)
      const repos = publishedRepos(home, names)
      for (const repo of repos) requireSaveDir(repo)
      // A hinted run of one repository starts with the previous data.dsync (30 MB at 200k files):
      // read on libuv's threads while the modules below load (generateRepo checks, once it holds
      // the repository's lock, that each file read is still the one there).
      const readAhead = opts.changed !== undefined && repos.length === 1 ? readAheadGeneration(repos[0].save, repos[0].name) : undefined
      // Loaded here, not at start-up: every other command (a pull, above all) would pay for them.
      const [{ loadOrCreateKey }, { generateRepo }, { readChangeList }] = await Promise.all([
        import('../../src/generation/keys.js'), import('../../src/publish/generate.js'), import('../../src/manifest/change-list.js'),
      ])
      // Every generation is signed; the key is made on first use (private part mode 0600).
      const key = loadOrCreateKey(home.paths.home)
      for (const repo of repos) {
        const bar = new ProgressBar(process.stderr, !g.json && process.stderr.isTTY === true)
        const result = await generateRepo({
          name: repo.name,
          save: repo.save,
          trackers: repo.trackers ?? home.main.trackers,
          threads: opts.threads,
          key,
          keepDeltas: repo.keepDeltas,
          readAhead,
          // This process is gendsync's own: a full run may walk and hash from inside the repository (repo-cwd.ts).
          ownsCwd: true,
          changed: opts.changed === undefined ? undefined : readChangeList(opts.changed, repo.save),
          onWarning: warn,
          onProgress: p => bar.update(p.phase === 'scan'
            ? { label: `${repo.name} ${t('gendsync.phase.scan')}`, filesDone: p.entries, filesTotal: 0, bytesDone: 0, bytesTotal: 0 }
            : { label: `${repo.name} ${t('gendsync.phase.hash')}`, ...p }),
        })
        bar.done()
        if (g.json) {
          printJson({ ...result, maxRssBytes: process.resourceUsage().maxRSS * 1024 })
        } else if (result.changed) {
          console.log(t('gendsync.done', {
            repo: result.repo, entries: result.entries, files: result.files, bytes: formatBytes(result.bytes),
            hashed: result.hashedFiles, hashedBytes: formatBytes(result.hashedBytes), seconds: result.seconds.toFixed(1),
            infohash: result.infoHash,
          }))
        } else {
          console.log(t('gendsync.unchanged', { repo: result.repo, infohash: result.infoHash, seconds: result.seconds.toFixed(1) }))
        }
      }
    })
}
