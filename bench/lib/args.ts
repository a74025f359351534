/**
 * Walks a benchmark's `--flag [value]` arguments: `on` gets each flag and a function that
 * takes the next argument as its value (an error naming the flag if there is none).
 */
export function eachArg(args: string[], on: (flag: string, value: () => string) => void): void {
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]
    on(flag, () => {
      const v = args[++i]
      if (v === undefined) throw new Error(`${flag} needs a value`)
      return v
    })
  }
}
