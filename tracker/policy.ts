import { readFileSync } from 'node:fs'
import { makeFirewall, type Firewall } from '../src/config/dtp-config.js'
import { DsyncError, ExitCode, fsError } from '../src/errors.js'
import { t } from '../src/i18n/index.js'
import { homeTorrents } from './home-torrents.js'

export interface PolicyOptions {
  /** Track only allowlisted info hashes. */
  private: boolean
  /** One infohash a line (40 hex or 32 base32), `#` comments. */
  allowFile?: string
  /** Every published repo's torrent in the dsync home counts as allowlisted. */
  fromHome?: boolean
  homeFlag?: string
  /** One passkey a line; when given, every request must carry one (`/KEY/announce`). */
  keysFile?: string
  /** Addresses / CIDR ranges allowed to talk to the tracker at all; empty = everyone. */
  allowAddresses?: string[]
}

/** Sent to clients as the failure reason; English, as every tracker does on the wire. */
export type Refusal = 'unregistered torrent' | 'passkey required' | 'invalid passkey'

const PASSKEY_RE = /^[A-Za-z0-9_-]{8,128}$/

/**
 * Who may use the tracker and for what. One object answers for every transport (HTTP,
 * UDP, WebSocket) and every action (announce, scrape, stats), so a rule cannot be
 * enforced on one path and forgotten on another, as stock bittorrent-tracker's `filter`
 * is for scrape.
 */
export class Policy {
  readonly addresses: Firewall
  private torrents: Set<string> | null = null
  private keys: Set<string> | null = null

  constructor(readonly options: PolicyOptions) {
    try {
      this.addresses = makeFirewall(options.allowAddresses ?? [])
    } catch (err) {
      throw new DsyncError(ExitCode.usage, 'tracker.badOption', { option: '--allow-address', reason: (err as Error).message })
    }
    if (options.private && !options.allowFile && !options.fromHome) {
      throw new DsyncError(ExitCode.usage, 'tracker.privateNeedsList')
    }
  }

  get isPrivate(): boolean {
    return this.options.private
  }

  get needsPasskey(): boolean {
    return this.keys !== null
  }

  /**
   * Reads the allowlist and keys files (again, on SIGHUP). All or nothing: a bad line
   * throws and the lists in force stay as they were. Returns warnings to log.
   */
  load(): { torrents: number; keys: number; warnings: string[] } {
    const warnings: string[] = []
    let torrents: Set<string> | null = null
    if (this.options.private) {
      torrents = new Set()
      if (this.options.allowFile) for (const h of readAllowFile(this.options.allowFile)) torrents.add(h)
      if (this.options.fromHome) {
        for (const ht of homeTorrents(this.options.homeFlag)) {
          if (ht.infoHash) torrents.add(ht.infoHash)
          else warnings.push(t('tracker.homeTorrentMissing', { repo: ht.repo, file: ht.file }))
        }
      }
    }
    const keys = this.options.keysFile ? readKeysFile(this.options.keysFile) : null
    this.torrents = torrents
    this.keys = keys
    return { torrents: torrents?.size ?? 0, keys: keys?.size ?? 0, warnings }
  }

  addressAllowed(address: string): boolean {
    return this.addresses.allows(address)
  }

  checkKey(passkey: string | undefined): Refusal | null {
    if (!this.keys) return null
    if (passkey === undefined || passkey === '') return 'passkey required'
    return this.keys.has(passkey) ? null : 'invalid passkey'
  }

  /** `infoHash` in lowercase hex. */
  checkTorrent(infoHash: string): Refusal | null {
    if (!this.torrents) return null
    return this.torrents.has(infoHash) ? null : 'unregistered torrent'
  }

  /** For dropping swarms an allowlist reload took away. */
  allowsTorrent(infoHash: string): boolean {
    return this.torrents === null || this.torrents.has(infoHash)
  }
}

function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split(/\r?\n/)
  } catch (err) {
    throw fsError(err, file, 'read')
  }
}

export function readAllowFile(file: string): string[] {
  const out: string[] = []
  readLines(file).forEach((raw, i) => {
    const text = raw.replace(/#.*/, '').trim()
    if (!text) return
    const hash = parseInfoHash(text)
    if (!hash) throw new DsyncError(ExitCode.config, 'tracker.allowLine', { file, line: i + 1, text: text.slice(0, 80) })
    out.push(hash)
  })
  return out
}

function readKeysFile(file: string): Set<string> {
  const keys = new Set<string>()
  readLines(file).forEach((raw, i) => {
    const text = raw.replace(/#.*/, '').trim()
    if (!text) return
    // A key may be followed by a note (who holds it).
    const key = text.split(/\s+/)[0]
    if (!PASSKEY_RE.test(key)) throw new DsyncError(ExitCode.config, 'tracker.keyLine', { file, line: i + 1 })
    keys.add(key)
  })
  return keys
}

/** Hex or base32 infohash (a magnet link's btih also works), as lowercase hex. */
export function parseInfoHash(text: string): string | null {
  const m = /(?:^|btih:)([0-9a-fA-F]{40}|[A-Za-z2-7]{32})(?:$|&)/.exec(text)
  if (!m) return null
  const h = m[1]
  if (h.length === 40) return h.toLowerCase()
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const c of h.toUpperCase()) {
    value = (value << 5) | 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(c)
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255)
      bits -= 8
    }
  }
  return Buffer.from(out).toString('hex')
}

export function isPasskey(text: string): boolean {
  return PASSKEY_RE.test(text)
}
