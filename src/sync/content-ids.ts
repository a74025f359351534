/**
 * A number for each distinct SHA-256 a list holds, found by the digest's own bytes: an
 * open-addressing table of Int32 slots over the digests, which are copied into chunks of their
 * own (32 bytes each). What the apply counts per content (how many paths still need it) is then
 * an array indexed by that number, not a Map keyed by a 64-character hex string made per file:
 * at 1M files the strings and the Map's entries were ~150 MB of the client's heap. The bytes
 * are copied, not referenced: a client entry makes its digest's Buffer view when asked
 * (format.ts, SlabEntry), and keeping a million of those views was ~92 MB (docs/SCALE.md, "Memory").
 */
export class ContentIds {
  /** Slot -> id + 1 (0: empty). Kept at most half full. */
  private slots: Int32Array
  /** Digest `id` is chunk id >> CHUNK_BITS, at byte ((id & CHUNK_MASK) * 32). */
  private readonly chunks: Buffer[] = []
  private count = 0

  constructor(expected = 1024) {
    let size = 1024
    while (size < expected * 2) size *= 2
    this.slots = new Int32Array(size)
  }

  get size(): number {
    return this.count
  }

  /** The id of this digest, given the next free one when it is new. */
  add(digest: Uint8Array): number {
    const at = this.find(digest)
    if (this.slots[at] !== 0) return this.slots[at] - 1
    const id = this.count++
    if ((id & CHUNK_MASK) === 0) this.chunks.push(Buffer.allocUnsafeSlow(CHUNK_BYTES))
    const chunk = this.chunks[id >> CHUNK_BITS]
    chunk.set(digest.subarray(0, 32), (id & CHUNK_MASK) * 32)
    this.slots[at] = id + 1
    if (this.count * 2 > this.slots.length) this.grow()
    return id
  }

  /** The id of this digest, -1 when it was never added. */
  get(digest: Uint8Array): number {
    return this.slots[this.find(digest)] - 1
  }

  /** The slot holding this digest, or the empty one where it would go. */
  private find(digest: Uint8Array): number {
    const mask = this.slots.length - 1
    // SHA-256 bytes are uniform: the first four are as good a hash as any.
    let at = slotHash(digest, 0) & mask
    for (;;) {
      const id = this.slots[at]
      if (id === 0 || this.holds(id - 1, digest)) return at
      at = (at + 1) & mask
    }
  }

  /** Digest number `id`'s bytes equal `digest`'s. */
  private holds(id: number, digest: Uint8Array): boolean {
    const chunk = this.chunks[id >> CHUNK_BITS]
    const off = (id & CHUNK_MASK) * 32
    for (let i = 0; i < 32; i++) if (chunk[off + i] !== digest[i]) return false
    return true
  }

  private grow(): void {
    const old = this.slots
    this.slots = new Int32Array(old.length * 2)
    const mask = this.slots.length - 1
    for (const id of old) {
      if (id === 0) continue
      let at = slotHash(this.chunks[(id - 1) >> CHUNK_BITS], ((id - 1) & CHUNK_MASK) * 32) & mask
      while (this.slots[at] !== 0) at = (at + 1) & mask
      this.slots[at] = id
    }
  }
}

/** 2048 digests (64 KiB) a chunk: allocated whole, out of Node's shared 8 KiB pool. */
const CHUNK_BITS = 11
const CHUNK_MASK = (1 << CHUNK_BITS) - 1
const CHUNK_BYTES = 32 << CHUNK_BITS

function slotHash(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)
}
