// `npm run bundle` (and `npm pack`, through prepack): the CLI and its worker threads as
// self-contained CommonJS files in dist/bundle/, so the published package has no runtime
// dependencies (none of webtorrent's install scripts, no node-datachannel binary: the
// webrtc-polyfill stub is what gets bundled). Reads the tsc output in dist/.
// `node scripts/bundle.mjs DIR` writes the bundle to DIR instead (bench swarm: a folder of its
// own run, so a job running dist/bundle/ at the same moment keeps its files).
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'

const out = process.argv[2] ?? 'dist/bundle'
rmSync(out, { recursive: true, force: true })
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // CommonJS, not ES modules: Node 20's ES module loader costs every start more, and a hinted
  // gendsync has two starts (the launcher's and its child's). At 200k files the time outside the
  // run's own work went from 0.555 to 0.478 s (medians of 10 pairs; docs/SCALE.md, session 19).
  format: 'cjs',
  outdir: out,
  logLevel: 'warning',
  legalComments: 'inline',
  // ws's optional native speed-ups: ws falls back to JavaScript when they are absent.
  external: ['bufferutil', 'utf-8-validate'],
  // The sources are ES modules and find their neighbours (the workers, package.json) by
  // import.meta.url, which CommonJS has not: the bundled file's own URL stands in for it. The
  // banner starts with the directive because ES modules are strict, and a "use strict" after
  // the banner's statement would be no directive at all.
  define: { 'import.meta.url': '__dsyncFileUrl' },
  banner: { js: "'use strict'; const __dsyncFileUrl = require('node:url').pathToFileURL(__filename).href;" },
}
await build({
  ...common,
  // Worker threads are loaded by file name next to the module that starts them
  // (new URL('./hash-worker.js', import.meta.url)), which esbuild does not follow: every
  // dist/src/**/NAME-worker.js is an entry of its own and sits beside dsync.js. (A list kept
  // by hand missed verify-worker and folders-worker: the installed CLI's pulls stalled.)
  entryPoints: { 'main.code': 'dist/cli/main.js', ...workerEntries('dist/src') },
  outExtension: { '.js': '.js' },
})
// gendsync.code.js (run by gendsync.js): the same program with gendsync's command only, for the installed command to run
// gendsync with (cli/dsync.sh; the launcher's child too). main.js compiles every command's code
// at each start (1.4 MB); this is ~0.4 MB: a hinted gendsync at 200k files starts with ~1,000
// fewer page faults (docs/SCALE.md, "gendsync, session 21"). main.ts loads only the module of
// the verb it runs, so the other commands' modules are left out: one that is loaded anyway
// (a verb the script routed here by mistake) fails in one line.
await build({ ...common, entryPoints: { 'gendsync.code': 'dist/cli/main.js' }, plugins: [onlyCommand('gendsync')] })
// main.js and gendsync.js: cli/start-cached.ts under both names, each running its program
// (NAME.code.js) from V8's code cache (NAME.code.cache, made below) instead of compiling it at
// every start.
await build({ ...common, entryPoints: { main: 'dist/cli/start-cached.js', gendsync: 'dist/cli/start-cached.js' } })
// `node dist/bundle/dsync.js`: the launcher (cli/launch.ts), which loads main.js beside it by a
// path it computes (so esbuild leaves that require alone) or runs it as a child for gendsync.
await build({ ...common, entryPoints: { dsync: 'dist/cli/launch.js' } })
// package.json's bin: a POSIX sh script (cli/dsync.sh) that execs Node on main.js, for gendsync
// with glibc's huge-pages tunable added to its environment: no Node process of its own.
copyFileSync('cli/dsync.sh', join(out, 'dsync'))
chmodSync(join(out, 'dsync'), 0o755)
// The folder says its files are CommonJS. Without it Node finds the module type from the
// nearest package.json up the tree: the package's own says "module" (its tsc output is ES
// modules), and a copy elsewhere may find any; a CommonJS file read as an ES module fails.
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n')
// The code caches: each program run once with a command that loads all it can (every command's
// module for main.js, gendsync's for gendsync.js), its cache written at exit with what the run
// compiled. NODE_OPTIONS left out: V8 refuses a cache made under other V8 flags.
for (const [name, args] of [['main.js', ['--help']], ['gendsync.js', ['gendsync', '--help']]]) {
  const { NODE_OPTIONS: _, ...env } = process.env
  execFileSync(process.execPath, [join(out, name), ...args], { env: { ...env, DSYNC_WRITE_CODE_CACHE: '1' }, stdio: 'ignore' })
}

/** An esbuild plugin: main.js's command modules (`./commands/NAME.js`) but `verb`'s become a module that throws. */
function onlyCommand(verb) {
  return {
    name: `only-${verb}`,
    setup(b) {
      b.onResolve({ filter: /^\.\/commands\/[^/]+\.js$/ }, args =>
        args.importer.endsWith(join('cli', 'main.js')) && args.path !== `./commands/${verb}.js` ? { path: args.path, namespace: 'left-out' } : undefined)
      b.onLoad({ filter: /.*/, namespace: 'left-out' }, args => ({
        contents: `throw new Error(${JSON.stringify(`${args.path} is not in this file (${verb}.js runs ${verb} only: run main.js)`)})`,
        loader: 'js',
      }))
    },
  }
}

/** Every NAME-worker.js under `dir`, by NAME-worker: two with one name would overwrite each other. */
function workerEntries(dir) {
  const entries = {}
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('-worker.js')) continue
    const name = basename(e.name, '.js')
    if (entries[name]) throw new Error(`bundle: two workers named ${name}`)
    entries[name] = join(e.parentPath ?? e.path, e.name)
  }
  return entries
}
