import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto'

/**
 * The signed generation record (docs/SCALE.md is the specification; keep them in step):
 *
 *   DSYNC-GENERATION 1
 *   repo NAME
 *   seq N
 *   time UNIX-SECONDS
 *   key <ed25519 public key, 64 hex>
 *   manifest <sha256 of data.dsync> <size>
 *   torrent <infohash>
 *   shard <infohash>                      (zero or more)
 *   delta <seq> <from> <to> <sha256> <size> <infohash|->   (zero or more, oldest first)
 *   dht <BEP 44 signature of the BEP 46 item, 128 hex>
 *   sig <ed25519 over every byte before this line, 128 hex>
 */
export const RECORD_MAGIC = 'DSYNC-GENERATION 1'
/** A record lists at most a few hundred deltas; anything bigger is not one. */
export const RECORD_CAP = 64 << 10

export interface DeltaRef {
  /** The generation this delta produces. */
  seq: number
  /** SHA-256 (hex) of the data.dsync it applies to, and of the one it produces. */
  from: string
  to: string
  /** SHA-256 (hex) and size of the delta file. */
  sha256: string
  size: number
  /** Infohash of the torrent of its changed files; undefined when it changes no content. */
  infoHash?: string
}

export interface RecordBody {
  repo: string
  seq: number
  time: number
  /** Publisher's ed25519 public key, 64 hex digits. */
  key: string
  manifest: { sha256: string; size: number }
  torrent: string
  shards: string[]
  deltas: DeltaRef[]
  /** BEP 44 signature (hex) of the BEP 46 item {ih: torrent} under salt = repo, seq. */
  dht: string
}

export interface GenerationRecord extends RecordBody {
  /** The record's bytes exactly as signed and served. */
  bytes: Buffer
}

export class RecordError extends Error {}

const HEX64 = /^[0-9a-f]{64}$/
const HEX40 = /^[0-9a-f]{40}$/
const HEX128 = /^[0-9a-f]{128}$/

/** The record's text without its `sig` line: what the signature covers. */
export function recordBodyText(r: RecordBody): string {
  const lines = [
    RECORD_MAGIC,
    `repo ${r.repo}`,
    `seq ${r.seq}`,
    `time ${r.time}`,
    `key ${r.key}`,
    `manifest ${r.manifest.sha256} ${r.manifest.size}`,
    `torrent ${r.torrent}`,
    ...r.shards.map(s => `shard ${s}`),
    ...r.deltas.map(d => `delta ${d.seq} ${d.from} ${d.to} ${d.sha256} ${d.size} ${d.infoHash ?? '-'}`),
    `dht ${r.dht}`,
  ]
  return lines.join('\n') + '\n'
}

/** Signs a record body with the publisher's private key; returns the record's bytes. */
export function signRecord(body: RecordBody, privateKey: KeyObject): Buffer {
  const text = Buffer.from(recordBodyText(body))
  const sig = sign(null, text, privateKey).toString('hex')
  return Buffer.concat([text, Buffer.from(`sig ${sig}\n`)])
}

/**
 * Parses a record and checks its signature against the key it names. Whether that key is the
 * one the user trusts is the caller's question. Throws RecordError naming the fault.
 */
export function parseRecord(bytes: Buffer): GenerationRecord {
  if (bytes.length > RECORD_CAP) throw new RecordError(`larger than ${RECORD_CAP} bytes`)
  const text = bytes.toString('utf8')
  if (!text.endsWith('\n') || !text.startsWith(RECORD_MAGIC + '\n')) throw new RecordError(`not a generation record (first line must be "${RECORD_MAGIC}")`)
  const sigAt = text.lastIndexOf('\nsig ', text.length - 2) + 1
  if (sigAt <= 0) throw new RecordError('no sig line')
  const sigHex = text.slice(sigAt + 4, -1)
  if (!HEX128.test(sigHex)) throw new RecordError('malformed sig line')
  const body = parseBody(text.slice(0, sigAt))
  if (!verify(null, Buffer.from(text.slice(0, sigAt)), publicKeyFromHex(body.key), Buffer.from(sigHex, 'hex'))) {
    throw new RecordError(`bad signature (key ${body.key})`)
  }
  return { ...body, bytes }
}

function parseBody(text: string): RecordBody {
  const r: Partial<RecordBody> = { shards: [], deltas: [] }
  const lines = text.split('\n').slice(1, -1)
  for (const [i, line] of lines.entries()) {
    const [name, ...v] = line.split(' ')
    const bad = (why: string) => new RecordError(`line ${i + 2}: ${why}`)
    switch (name) {
      case 'repo': r.repo = one(v, /^[A-Za-z0-9][A-Za-z0-9._-]*$/, bad); break
      case 'seq': r.seq = int(one(v, /^\d{1,15}$/, bad)); break
      case 'time': r.time = int(one(v, /^\d{1,15}$/, bad)); break
      case 'key': r.key = one(v, HEX64, bad); break
      case 'manifest':
        if (v.length !== 2 || !HEX64.test(v[0]) || !/^\d{1,15}$/.test(v[1])) throw bad('malformed manifest line')
        r.manifest = { sha256: v[0], size: int(v[1]) }
        break
      case 'torrent': r.torrent = one(v, HEX40, bad); break
      case 'shard': r.shards!.push(one(v, HEX40, bad)); break
      case 'delta': r.deltas!.push(parseDelta(v, bad)); break
      case 'dht': r.dht = one(v, HEX128, bad); break
      default:
        if (!/^[a-z][a-z0-9-]*$/.test(name)) throw bad('malformed line') // unknown names: later versions' fields
    }
  }
  for (const k of ['repo', 'seq', 'time', 'key', 'manifest', 'torrent', 'dht'] as const) {
    if (r[k] === undefined) throw new RecordError(`no ${k} line`)
  }
  return r as RecordBody
}

function parseDelta(v: string[], bad: (why: string) => Error): DeltaRef {
  if (v.length !== 6 || !/^\d{1,15}$/.test(v[0]) || !HEX64.test(v[1]) || !HEX64.test(v[2]) || !HEX64.test(v[3]) ||
    !/^\d{1,15}$/.test(v[4]) || !(v[5] === '-' || HEX40.test(v[5]))) throw bad('malformed delta line')
  return { seq: int(v[0]), from: v[1], to: v[2], sha256: v[3], size: int(v[4]), infoHash: v[5] === '-' ? undefined : v[5] }
}

function one(v: string[], re: RegExp, bad: (why: string) => Error): string {
  if (v.length !== 1 || !re.test(v[0])) throw bad(`malformed value "${v.join(' ')}"`)
  return v[0]
}

function int(s: string): number {
  return Number(s)
}

export function publicKeyFromHex(hex: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(hex, 'hex').toString('base64url') }, format: 'jwk' })
}

/** BEP 46's value: the infohash of the torrent a name currently points at. */
export function bep46Value(infoHash: string): { ih: Buffer } {
  return { ih: Buffer.from(infoHash, 'hex') }
}

/**
 * The bytes BEP 44 signs: the bencoded dict {salt, seq, v: {ih}} without its outer d…e, keys
 * in bencode's sorted order. Written out here rather than through the bencode package: every
 * pull checks a record, and a no-change check should not load a codec for 40 bytes.
 */
export function bep44SignedBytes(salt: string, seq: number, infoHash: string): Buffer {
  const s = Buffer.from(salt)
  const ih = bep46Value(infoHash).ih
  return Buffer.concat([Buffer.from(`4:salt${s.length}:`), s, Buffer.from(`3:seqi${seq}e1:vd2:ih${ih.length}:`), ih, Buffer.from('e')])
}

export function signBep44(salt: string, seq: number, infoHash: string, privateKey: KeyObject): string {
  return sign(null, bep44SignedBytes(salt, seq, infoHash), privateKey).toString('hex')
}

export function verifyBep44(salt: string, seq: number, infoHash: string, keyHex: string, sigHex: string): boolean {
  return verify(null, bep44SignedBytes(salt, seq, infoHash), publicKeyFromHex(keyHex), Buffer.from(sigHex, 'hex'))
}
