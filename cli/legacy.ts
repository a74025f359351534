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
  return defaultRun(out)
}

/** DSYNC's run flags: they imply the run command, which is also what a bare `dsync` does. */
const RUN_FLAGS: Record<string, string> = { '-nolog': '--nolog', '-force': '--force', '--nolog': '--nolog', '--force': '--force' }

/**
 * No command given: DSYNC's bare `dsync` (and `dsync -nolog`, `dsync -force`) syncs every due
 * repository. Help and version requests stay what they are.
 */
function defaultRun(args: string[]): string[] {
  if (args.some(a => ['-h', '--help', '-V', '--version'].includes(a))) return args
  const globalsOnly = args.every((a, i) => RUN_FLAGS[a] || a === '--home' || a === '--json' || args[i - 1] === '--home')
  if (!globalsOnly) return args // an unknown flag: let commander report it
  return ['run', ...args.map(a => RUN_FLAGS[a] ?? a)]
}
