/**
 * A number for each distinct SHA-256 a list holds, found by the digest's own bytes: an
 * open-addressing table of Int32 slots over the digests. What the apply counts per content
 * (how many paths still need it) is then an array indexed by that number, not a Map keyed by a
 * 64-character hex string made per file: at 1M files the strings and the Map's entries were
 * ~150 MB of the client's heap. The digests are read from the caller when it keeps them
 * (`digestOf`: FetchList's first entries), else copied into chunks of their own (32 bytes
 * each); never kept as the Buffers handed in: a client entry makes its digest's view when
 * asked (format.ts, SlabEntry), and a million such views was ~92 MB (docs/SCALE.md, "Memory").
 */
export class ContentIds {
  /** Slot -> id + 1 (0: empty). Kept at most half full. */
  private slots: Int32Array
  /** Without `digestOf`: digest `id` is chunk id >> CHUNK_BITS, at byte ((id & CHUNK_MASK) * 32). */
  private readonly chunks: Buffer[] = []
  private count = 0

  /**
   * `digestOf(id)`: the caller's digest for each id given out (asked only for ids already added);
   * `sameDigest(id, digest)`, when given, compares one of them in place (no view per probe).
   */
  constructor(expected = 1024, private readonly digestOf?: (id: number) => Uint8Array, private readonly sameDigest?: (id: number, digest: Uint8Array) => boolean) {
    let size = 1024
    while (size < expected * 2) size *= 2
    this.slots = new Int32Array(size)
  }

  get size(): number {
    return this.count
  }

  /** The id of this digest, given the next free one when it is new. */
  add(digest: Uint8Array): number {
    let at = this.find(digest)
    if (this.slots[at] !== 0) return this.slots[at] - 1
    if ((this.count + 1) * 2 > this.slots.length) {
      this.grow()
      at = this.find(digest)
    }
    const id = this.count++
    if (!this.digestOf) {
      if ((id & CHUNK_MASK) === 0) this.chunks.push(Buffer.allocUnsafeSlow(CHUNK_BYTES))
      this.chunks[id >> CHUNK_BITS].set(digest.subarray(0, 32), (id & CHUNK_MASK) * 32)
    }
    this.slots[at] = id + 1
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
    if (this.sameDigest) return this.sameDigest(id, digest)
    const [bytes, off] = this.bytesOf(id)
    for (let i = 0; i < 32; i++) if (bytes[off + i] !== digest[i]) return false
    return true
  }

  /** Where digest number `id`'s bytes are: the caller's, or a chunk of this table's. */
  private bytesOf(id: number): [Uint8Array, number] {
    return this.digestOf ? [this.digestOf(id), 0] : [this.chunks[id >> CHUNK_BITS], (id & CHUNK_MASK) * 32]
  }

  private grow(): void {
    const old = this.slots
    this.slots = new Int32Array(old.length * 2)
    const mask = this.slots.length - 1
    for (const id of old) {
      if (id === 0) continue
      let at = slotHash(...this.bytesOf(id - 1)) & mask
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
