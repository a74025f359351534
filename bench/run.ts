// `npm run bench -- NAME [args]` runs bench/NAME.ts; each benchmark prints its own table
// of measurements beside a baseline measured in the same run.
import { BenchArgError } from './lib/args.js'

const [name, ...args] = process.argv.slice(2)
if (!name || !/^[a-z][a-z0-9-]*$/.test(name)) {
  process.stderr.write('usage: npm run bench -- NAME [args]   (NAME: gendsync, scale, tracker, host, host-abuse, sync, swarm)\n')
  process.exit(2)
}
let mod: { run(args: string[]): Promise<void> }
try {
  mod = await import(`./${name}.js`)
} catch (err) {
  process.stderr.write(`no benchmark named "${name}" (${(err as Error).message})\n`)
  process.exit(2)
}
try {
  await mod.run(args)
} catch (err) {
  if (!(err instanceof BenchArgError)) throw err
  // Its options are the comment at the top of its file: one place to keep them.
  if (err.message === 'help') process.stderr.write(`npm run bench -- ${name}: its options are listed at the top of bench/${name}.ts\n`)
  else process.stderr.write(`npm run bench -- ${name}: ${err.message} (options: the comment at the top of bench/${name}.ts)\n`)
  process.exit(2)
}
