/**
 * DSYNC spells its verbs as single-dash flags (`dsync -gendsync`, `dsync -sync rocky`).
 * Commander would read those as unknown options, so the first argument that spells a known
 * command that way is rewritten to the subcommand before parsing.
 */
export function rewriteLegacyVerbs(args: string[], commands: string[]): string[] {
  const known = new Set(commands)
  const out = [...args]
  for (let i = 0; i < out.length; i++) {
    const a = out[i]
    if (!a.startsWith('-')) return out // a subcommand (or operand) came first: nothing legacy
    if (!a.startsWith('--') && known.has(a.slice(1))) {
      out[i] = a.slice(1)
      return out
    }
    if (a === '--home') i++ // skip its value
  }
  return out
}
