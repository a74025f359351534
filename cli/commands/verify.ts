import { resolve } from 'node:path'
import type { Command } from 'commander'
import { ExitCode } from '../../src/errors.js'
import { t } from '../../src/i18n/index.js'
import { escapePath } from '../../src/manifest/escape.js'
import { ProgressBar } from '../../src/ui/progress.js'
import { formatBytes } from '../../src/ui/units.js'
import { globals, printJson, warn } from '../context.js'

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('re-hash a tree against its .dsync/data.dsync and list every mismatch (exit 1 on any)')
    .argument('<dir>', 'the repository folder')
    .action(async (dir: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const { verifyTree } = await import('../../src/manifest/verify.js')
      const bar = new ProgressBar(process.stderr, !g.json && process.stderr.isTTY === true)
      const result = await verifyTree(resolve(dir), {
        onWarning: warn,
        onProgress: (filesDone, filesTotal, bytesDone, bytesTotal) =>
          bar.update({ label: 'verify', filesDone, filesTotal, bytesDone, bytesTotal }),
      })
      bar.done()
      if (g.json) {
        printJson(result)
      } else {
        for (const m of result.mismatches) {
          const detail = m.expected !== undefined || m.actual !== undefined ? `\t${m.expected ?? ''} -> ${m.actual ?? ''}` : ''
          console.log(`${m.kind}\t${escapePath(m.path)}${detail}`)
        }
        console.log(result.mismatches.length === 0
          ? t('verify.ok', { dir: result.dir, entries: result.entries, bytes: formatBytes(result.hashedBytes), seconds: result.seconds.toFixed(1) })
          : t('verify.mismatch', { dir: result.dir, count: result.mismatches.length }))
      }
      if (result.mismatches.length > 0) process.exitCode = ExitCode.failed
    })
}
