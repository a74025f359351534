// `npm run bench -- NAME [args]` runs bench/NAME.ts; each benchmark prints its own table
// of measurements beside a baseline measured in the same run.
const [name, ...args] = process.argv.slice(2)
if (!name || !/^[a-z][a-z0-9-]*$/.test(name)) {
  process.stderr.write('usage: npm run bench -- NAME [args]   (NAME: gendsync, tracker, host, host-abuse, sync, swarm)\n')
  process.exit(2)
}
let mod: { run(args: string[]): Promise<void> }
try {
  mod = await import(`./${name}.js`)
} catch (err) {
  process.stderr.write(`no benchmark named "${name}" (${(err as Error).message})\n`)
  process.exit(2)
}
await mod.run(args)
