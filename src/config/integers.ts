import type { IntRange } from './defaults.js'

/**
 * The one integer rule for CLI options and config values: decimal digits only (no sign,
 * exponent, hex or blank, so `NaN`, `1e3` and `0x10` are refused), within the setting's range.
 * Throws an Error whose message is the reason, for the caller to name the flag or file:line.
 */
export function parseInteger(text: string, range: IntRange): number {
  const n = Number(text)
  if (!/^\d{1,15}$/.test(text) || n < range.min || n > range.max) {
    throw new Error(`expected a whole number from ${range.min} to ${range.max}, got "${text}"`)
  }
  return n
}
