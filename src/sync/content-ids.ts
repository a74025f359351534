/**
 * A number for each distinct SHA-256 a list holds, found by the digest's own bytes: an
 * open-addressing table of Int32 slots over the digests (the entries' own Buffers, not copies).
 * What the apply counts per content (how many paths still need it) is then an array indexed by
 * that number, not a Map keyed by a 64-character hex string made per file: at 1M files the
 * strings and the Map's entries were ~150 MB of the client's heap (docs/SCALE.md, "Memory").
 */
export class ContentIds {
  /** Slot -> id + 1 (0: empty). Kept at most half full. */
  private slots: Int32Array
  private readonly digests: Uint8Array[] = []

  constructor(expected = 1024) {
    let size = 1024
    while (size < expected * 2) size *= 2
    this.slots = new Int32Array(size)
  }

  get size(): number {
    return this.digests.length
  }

  /** The id of this digest, given the next free one when it is new. */
  add(digest: Uint8Array): number {
    const at = this.find(digest)
    if (this.slots[at] !== 0) return this.slots[at] - 1
    this.digests.push(digest)
    this.slots[at] = this.digests.length
    if (this.digests.length * 2 > this.slots.length) this.grow()
    return this.digests.length - 1
  }

  /** The id of this digest, -1 when it was never added. */
  get(digest: Uint8Array): number {
    return this.slots[this.find(digest)] - 1
  }

  /** The slot holding this digest, or the empty one where it would go. */
  private find(digest: Uint8Array): number {
    const mask = this.slots.length - 1
    // SHA-256 bytes are uniform: the first four are as good a hash as any.
    let at = (digest[0] | (digest[1] << 8) | (digest[2] << 16) | (digest[3] << 24)) & mask
    for (;;) {
      const id = this.slots[at]
      if (id === 0 || sameDigest(this.digests[id - 1], digest)) return at
      at = (at + 1) & mask
    }
  }

  private grow(): void {
    const old = this.slots
    this.slots = new Int32Array(old.length * 2)
    const mask = this.slots.length - 1
    for (const id of old) {
      if (id === 0) continue
      const d = this.digests[id - 1]
      let at = (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) & mask
      while (this.slots[at] !== 0) at = (at + 1) & mask
      this.slots[at] = id
    }
  }
}

function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false
  return true
}
