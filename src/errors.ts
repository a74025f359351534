import { t, type MessageId, type MessageParams } from './i18n/index.js'

/**
 * Exit codes are part of the CLI contract (documented in `dsync --help`); scripts that
 * wrap dsync, as DSYNC's cron jobs do, branch on them.
 */
export const ExitCode = {
  ok: 0,
  /** The command ran and found a problem it was asked to look for (verify mismatches). */
  failed: 1,
  usage: 2,
  config: 3,
  /** A data.dsync, .torrent or other input file is malformed or hostile. */
  badData: 4,
  /** Reading or writing the filesystem failed (missing path, permission, disk full). */
  io: 5,
  network: 6,
  /** Another dsync process holds the lock of this repository. */
  locked: 7,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * An error the user can act on. Its message is one line, already translated, and names
 * the file/line/peer involved; the CLI prints it without a stack trace.
 */
export class DsyncError extends Error {
  readonly exitCode: ExitCode
  readonly id: MessageId
  readonly params: MessageParams

  constructor(exitCode: ExitCode, id: MessageId, params: MessageParams = {}) {
    super(t(id, params))
    this.name = 'DsyncError'
    this.exitCode = exitCode
    this.id = id
    this.params = params
  }
}

/** Turns a Node fs error into a DsyncError naming the path, keeping other errors as they are. */
export function fsError(err: unknown, path: string, action: 'read' | 'write' | 'stat' | 'open'): Error {
  const e = err as NodeJS.ErrnoException
  if (e && typeof e.code === 'string') {
    return new DsyncError(ExitCode.io, 'fs.failed', { action, path, reason: describeErrno(e) })
  }
  return err instanceof Error ? err : new Error(String(err))
}

export function describeErrno(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT': return t('errno.ENOENT')
    case 'EACCES': case 'EPERM': return t('errno.EACCES')
    case 'ENOSPC': return t('errno.ENOSPC')
    case 'ENOTDIR': return t('errno.ENOTDIR')
    case 'EISDIR': return t('errno.EISDIR')
    case 'EMFILE': case 'ENFILE': return t('errno.EMFILE')
    case 'EIO': return t('errno.EIO')
    default: return e.code ?? e.message
  }
}
