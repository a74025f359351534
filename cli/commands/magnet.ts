import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { findRepo } from '../../src/config/load.js'
import { DsyncError, ExitCode } from '../../src/errors.js'
import { repoFiles } from '../../src/manifest/paths.js'
import { globals, openHome, printJson } from '../context.js'

export function registerMagnet(program: Command): void {
  program
    .command('magnet')
    .description('print the magnet link of a published repository (made by gendsync)')
    .argument('<repo>', 'repository name')
    .action((name: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const repo = findRepo(openHome(g), name)
      const file = repoFiles(repo.save, repo.name).magnet
      let magnet: string
      try {
        magnet = readFileSync(file, 'utf8').trim()
      } catch {
        throw new DsyncError(ExitCode.badData, 'manifest.notGenerated', { repo: repo.name, file })
      }
      if (g.json) printJson({ repo: repo.name, magnet })
      else console.log(magnet)
    })
}
