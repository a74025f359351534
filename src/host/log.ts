import { t, type MessageId, type MessageParams } from '../i18n/index.js'

/**
 * One line per notable event. The event name is the message id without `host.log.`, so a
 * JSON line (`--json`) and a text line say the same thing: `{"time":..,"event":"peer",..}`
 * or `2025-01-02T03:04:05Z peer 127.0.0.3:51234 connected to rocky`.
 */
export type LogEvent =
  | 'listening' | 'repoLoaded' | 'repoRefused' | 'repoDropped' | 'peer' | 'peerGone' | 'refused'
  | 'stale' | 'reloaded' | 'reloadFailed' | 'stopping' | 'error' | 'firstBlock' | 'announce' | 'listenChanged'
  | 'limited' | 'uploadLimit'

export class HostLog {
  constructor(private readonly json: boolean, private readonly out: NodeJS.WritableStream = process.stdout) {}

  event(event: LogEvent, params: MessageParams = {}): void {
    const time = new Date().toISOString()
    const line = this.json
      ? JSON.stringify({ time, event, ...params })
      : `${time} ${t(`host.log.${event}` as MessageId, params)}`
    this.out.write(line + '\n')
  }
}
