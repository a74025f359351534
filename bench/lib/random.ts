/**
 * A small seeded PRNG (mulberry32): benchmark trees have the same shape on every run and
 * every machine, so numbers from two runs compare like with like.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** Standard normal deviate (Box-Muller) from a uniform source. */
export function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand())
}

/** `count` distinct indexes in [0, n), in random order. */
export function sampleIndexes(rand: () => number, n: number, count: number): number[] {
  const picked = new Set<number>()
  while (picked.size < Math.min(count, n)) picked.add(Math.floor(rand() * n))
  return [...picked]
}
