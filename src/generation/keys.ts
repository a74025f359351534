import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic-write.js'

/** The publisher's ed25519 key pair: signs every generation record this home publishes. */
export interface PublisherKey {
  privateKey: KeyObject
  /** Raw 32-byte public key in hex: what `dsync key` prints, `dsync-key=` and btpk magnets hold. */
  publicHex: string
  file: string
}

export function keyFiles(home: string): { dir: string; privateFile: string; publicFile: string } {
  const dir = join(home, 'keys')
  return { dir, privateFile: join(dir, 'publisher.key'), publicFile: join(dir, 'publisher.pub') }
}

/** Loads the home's publisher key, creating it (private part mode 0600) when there is none. */
export function loadOrCreateKey(home: string): PublisherKey {
  const f = keyFiles(home)
  if (!existsSync(f.privateFile)) return createKey(home)
  return loadKey(home)
}

export function loadKey(home: string): PublisherKey {
  const f = keyFiles(home)
  let pem: Buffer
  try {
    pem = readFileSync(f.privateFile)
  } catch (err) {
    throw fsError(err, f.privateFile, 'read')
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (err) {
    throw new DsyncError(ExitCode.config, 'generation.badKey', { file: f.privateFile, reason: (err as Error).message })
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new DsyncError(ExitCode.config, 'generation.badKey', { file: f.privateFile, reason: `${privateKey.asymmetricKeyType} key, expected ed25519` })
  }
  return { privateKey, publicHex: publicHexOf(createPublicKey(privateKey)), file: f.privateFile }
}

function createKey(home: string): PublisherKey {
  const f = keyFiles(home)
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  try {
    mkdirSync(f.dir, { recursive: true, mode: 0o700 })
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' })
    writeFileAtomic(f.privateFile, pem, 0o600)
    chmodSync(f.privateFile, 0o600)
  } catch (err) {
    throw fsError(err, f.privateFile, 'write')
  }
  const publicHex = publicHexOf(publicKey)
  writeFileAtomic(f.publicFile, publicHex + '\n')
  return { privateKey, publicHex, file: f.privateFile }
}

export function publicHexOf(key: KeyObject): string {
  const x = key.export({ format: 'jwk' }).x
  if (typeof x !== 'string') throw new Error('not an ed25519 key')
  return Buffer.from(x, 'base64url').toString('hex')
}

/** A public key as a user writes it (dsync-key=, --key, urn:btpk:): 64 hex digits. */
export function isPublicKeyHex(s: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(s)
}
