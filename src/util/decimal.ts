/**
 * The number written as ASCII in buf[start, end), read in place: plain digits (the common
 * case in data.dsync and the hash cache) without a string; anything else (a sign, a
 * fraction, more than 15 digits, an empty field) as Number() reads the text, so the result
 * is always exactly what parsing the text would give.
 */
export function readDecimal(buf: Buffer, start: number, end: number): number {
  if (start >= end || end - start > 15) return Number(buf.toString('latin1', start, end))
  let v = 0
  for (let p = start; p < end; p++) {
    const d = buf[p] - 0x30
    if (d < 0 || d > 9) return Number(buf.toString('latin1', start, end))
    v = v * 10 + d
  }
  return v
}
