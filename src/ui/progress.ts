import { formatBytes, formatDuration } from './units.js'

export interface ProgressState {
  label: string
  filesDone: number
  filesTotal: number
  bytesDone: number
  bytesTotal: number
  /** Extra text after the numbers (peers, phase). */
  note?: string
}

/**
 * A one-line progress bar on a terminal: files, bytes, rate, ETA. It draws only when the
 * stream is a TTY (cron mails and `--json` consumers get no control characters), at most
 * ten times a second, and erases itself when done.
 */
export class ProgressBar {
  private lastDraw = 0
  private readonly started = Date.now()
  private drawn = false

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly enabled = stream.isTTY === true) {}

  update(s: ProgressState, force = false): void {
    if (!this.enabled) return
    const now = Date.now()
    if (!force && now - this.lastDraw < 100) return
    this.lastDraw = now
    this.stream.write('\r' + this.render(s, now).slice(0, (this.stream.columns || 100) - 1) + '\x1b[K')
    this.drawn = true
  }

  done(): void {
    if (this.drawn) this.stream.write('\r\x1b[K')
    this.drawn = false
  }

  render(s: ProgressState, now = Date.now()): string {
    const elapsed = (now - this.started) / 1000
    const frac = s.bytesTotal > 0 ? s.bytesDone / s.bytesTotal : s.filesTotal > 0 ? s.filesDone / s.filesTotal : 0
    const width = 24
    const filled = Math.round(Math.min(1, frac) * width)
    const rate = elapsed > 0 ? s.bytesDone / elapsed : 0
    const eta = rate > 0 ? (s.bytesTotal - s.bytesDone) / rate : Infinity
    const parts = [
      `${s.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%`,
      `${s.filesDone}/${s.filesTotal} files`,
      `${formatBytes(s.bytesDone)}/${formatBytes(s.bytesTotal)}`,
      `${formatBytes(rate)}/s`,
      `ETA ${formatDuration(eta)}`,
    ]
    if (s.note) parts.push(s.note)
    return parts.join('  ')
  }
}
