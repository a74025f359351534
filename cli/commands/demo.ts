import type { Command } from 'commander'

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the embedded demo on loopback in a temporary folder (what `npm start` runs)')
    .option('--keep', 'keep the demo folder afterwards')
    .action(async (opts: { keep?: boolean }) => {
      const { runDemo } = await import('../../src/demo/demo.js')
      await runDemo({ log: line => console.log(line), keep: opts.keep })
    })
}
