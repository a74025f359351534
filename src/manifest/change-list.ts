import { readFileSync } from 'node:fs'
import { isAbsolute, relative } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { isSafeRelativePath } from './entry.js'
import { DSYNC_DIR } from './paths.js'

/**
 * The change hint of `gendsync --changed FILE`: the paths that changed since the last
 * generation, one per line. Two spellings are read:
 *  - a plain path, relative to the repository (or absolute, inside it);
 *  - a line of rsync's `--itemize-changes` output (`>f+++++++++ pool/a.deb`,
 *    `*deleting   pool/old.deb`, `cL+++++++++ link -> target`, `.d..t...... pool/`): the
 *    11-character change code, a space, the path; rsync's `\#ooo` escapes are decoded.
 * Paths under .dsync/ and the repository root itself are ignored. Returns the unique paths.
 */
export function readChangeList(file: string, root: string): string[] {
  let text: string
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8')
  } catch (err) {
    throw fsError(err, file, 'read')
  }
  const out = new Set<string>()
  text.split('\n').forEach((line, i) => {
    if (line === '') return
    const path = pathOfLine(line, root)
    if (path === '' || path === '.') return
    if (!isSafeRelativePath(path)) {
      throw new DsyncError(ExitCode.usage, 'scale.badChangeLine', { file, line: i + 1, reason: path })
    }
    if (path === DSYNC_DIR || path.startsWith(DSYNC_DIR + '/')) return
    out.add(path)
  })
  return [...out]
}

/** rsync 3's itemized line: YXcstpoguax (11 characters), a space, the name. */
const ITEMIZED = /^(?:[<>ch.][fdLDS][^ ]{9}|\*deleting  ) /

function pathOfLine(line: string, root: string): string {
  let path = line
  const m = ITEMIZED.exec(line)
  if (m) {
    path = decodeRsync(line.slice(12))
    if (line[1] === 'L') path = cutAt(path, ' -> ')
    if (line[0] === 'h') path = cutAt(path, ' => ')
  }
  if (isAbsolute(path)) path = relative(root, path)
  while (path.startsWith('./')) path = path.slice(2)
  while (path.endsWith('/')) path = path.slice(0, -1)
  return path
}

function cutAt(text: string, sep: string): string {
  const at = text.indexOf(sep)
  return at < 0 ? text : text.slice(0, at)
}

/** rsync prints unprintable bytes of a name as `\#ooo` (octal). */
function decodeRsync(name: string): string {
  if (!name.includes('\\#')) return name
  const bytes: number[] = []
  const raw = Buffer.from(name, 'utf8')
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && raw[i + 1] === 0x23 && /^[0-7]{3}$/.test(raw.toString('latin1', i + 2, i + 5))) {
      bytes.push(parseInt(raw.toString('latin1', i + 2, i + 5), 8))
      i += 4
    } else bytes.push(raw[i])
  }
  return Buffer.from(bytes).toString('utf8')
}
