import { join } from 'node:path'
import type { RepoFiles } from './paths.js'

/**
 * Where a data.dsync's line offsets are kept (line-cache.ts). Apart from that module because the
 * CLI's read-ahead names the file, and the read-ahead is loaded with the gendsync command's module
 * by every command that lists the commands (`--version`, `--help`): the cache's code would bring
 * the list's parser into each of them (test/startup.test.ts).
 */
export function linesFile(files: RepoFiles): string {
  return join(files.dir, 'lines')
}
