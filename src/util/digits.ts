/**
 * Digests written as text straight into a buffer, with no string per value: gendsync writes
 * ~200k SHA-256s in hex and as many piece lists in base64 at mirror scale.
 */
const HEX = Buffer.from('0123456789abcdef', 'latin1')
const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1')

/** `src[from, from + n)` as lowercase hex digits into `buf` at `at`; returns the end. */
export function writeHex(buf: Uint8Array, at: number, src: Uint8Array, from: number, n: number): number {
  for (let i = from; i < from + n; i++) {
    buf[at++] = HEX[src[i] >> 4]
    buf[at++] = HEX[src[i] & 15]
  }
  return at
}

/** `src[from, from + n)` in base64 with `=` padding (what Buffer's toString('base64') gives) into `buf` at `at`; returns the end. */
export function writeBase64(buf: Uint8Array, at: number, src: Uint8Array, from: number, n: number): number {
  const end = from + n
  let i = from
  for (; i + 3 <= end; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2]
    buf[at++] = B64[v >> 18]
    buf[at++] = B64[(v >> 12) & 63]
    buf[at++] = B64[(v >> 6) & 63]
    buf[at++] = B64[v & 63]
  }
  if (i < end) {
    const two = i + 1 < end
    const v = (src[i] << 16) | (two ? src[i + 1] << 8 : 0)
    buf[at++] = B64[v >> 18]
    buf[at++] = B64[(v >> 12) & 63]
    buf[at++] = two ? B64[(v >> 6) & 63] : 0x3d
    buf[at++] = 0x3d
  }
  return at
}

/** Length of base64 text for `n` bytes. */
export function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4
}

/** `n` in decimal, as String(n) writes it, into `buf` at `at`; returns the end. Digits by hand for integers in 0..2^53. */
export function writeDecimal(buf: Buffer, at: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) return at + buf.write(String(n), at, 'latin1')
  let len = 1
  for (let x = n; x >= 10; x = Math.floor(x / 10)) len++
  for (let i = at + len - 1; i >= at; i--, n = Math.floor(n / 10)) buf[i] = 0x30 + (n % 10)
  return at + len
}
