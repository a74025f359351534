import type { Command } from 'commander'
import { resolveHome } from '../../src/config/home.js'
import { globals, printJson } from '../context.js'

export function registerKey(program: Command): void {
  program
    .command('key')
    .description("print this home's publisher public key (made on first use): downstream mirrors pin it with dsync-key= or pull --key")
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const { keyFiles, loadOrCreateKey } = await import('../../src/generation/keys.js')
      const home = resolveHome(g.home)
      const key = loadOrCreateKey(home)
      if (g.json) printJson({ key: key.publicHex, file: keyFiles(home).publicFile })
      else console.log(key.publicHex)
    })
}
