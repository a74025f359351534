import type { Command } from 'commander'
import { initHome } from '../../src/config/init.js'
import { resolveHome } from '../../src/config/home.js'
import { t } from '../../src/i18n/index.js'
import { globals, printJson } from '../context.js'

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a dsync home (xync.conf, repos/, dtp/) with commented templates')
    .option('--webroot <dir>', 'folder holding the repositories', '/mirrors')
    .action((opts: { webroot: string }, cmd: Command) => {
      const g = globals(cmd)
      const home = resolveHome(g.home)
      const created = initHome(home, opts.webroot)
      if (g.json) printJson({ home, webroot: opts.webroot, created })
      else console.log(t('init.done', { home, webroot: opts.webroot, repos: `${home}/repos` }))
    })
}
