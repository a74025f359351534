/**
 * The verb of a command line (its first word after the global options), or undefined when
 * there is none or help or the version is asked for before it (the whole program then).
 */
export function verbOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (['-h', '--help', '-V', '--version'].includes(a)) return undefined
    if (a === '--home') i++
    else if (!a.startsWith('-')) return a
  }
  return undefined
}
