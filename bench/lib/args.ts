/** A mistake in a benchmark's arguments: `npm run bench` prints it as one line, no stack. */
export class BenchArgError extends Error {}

/**
 * Walks a benchmark's `--flag [value]` arguments: `on` gets each flag and a function that
 * takes the next argument as its value (an error naming the flag if there is none). What `on`
 * throws (an unknown flag, a bad value) is an argument error; `--help` is answered the same way.
 */
export function eachArg(args: string[], on: (flag: string, value: () => string) => void): void {
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]
    if (flag === '--help' || flag === '-h') throw new BenchArgError('help')
    try {
      on(flag, () => {
        const v = args[++i]
        if (v === undefined) throw new Error(`${flag} needs a value`)
        return v
      })
    } catch (err) {
      throw err instanceof BenchArgError ? err : new BenchArgError((err as Error).message)
    }
  }
}

/** `value` as a whole number of at least `min`, or an error naming `flag` (a typo must not run a bench of NaN). */
export function count(flag: string, value: string, min = 1): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs a whole number of at least ${min}, not "${value}"`)
  return n
}
