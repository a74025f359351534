import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { resolveHome } from '../../src/config/home.js'
import { t } from '../../src/i18n/index.js'
import { globals, printJson, warn } from '../context.js'

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a dsync home (xync.conf, repos/, dtp/) with commented templates')
    .option('--webroot <dir>', 'folder holding the repositories', '/mirrors')
    .action(async (opts: { webroot: string }, cmd: Command) => {
      const g = globals(cmd)
      const { initHome } = await import('../../src/config/init.js')
      const home = resolveHome(g.home)
      const webroot = resolve(opts.webroot)
      const created = initHome(home, webroot)
      if (!existsSync(webroot)) warn(t('init.noWebroot', { webroot }))
      if (g.json) printJson({ home, webroot, created })
      else console.log(t('init.done', { home, webroot, repos: `${home}/repos` }))
    })
}
