// `npm run bundle` (and `npm pack`, through prepack): the CLI and its worker threads as
// self-contained ES modules in dist/bundle/, so the published package has no runtime
// dependencies (none of webtorrent's install scripts, no node-datachannel binary: the
// webrtc-polyfill stub is what gets bundled). Reads the tsc output in dist/.
// `node scripts/bundle.mjs DIR` writes the bundle to DIR instead (bench swarm: a folder of its
// own run, so a job running dist/bundle/ at the same moment keeps its files).
import { build } from 'esbuild'
import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'

const out = process.argv[2] ?? 'dist/bundle'
rmSync(out, { recursive: true, force: true })
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outdir: out,
  logLevel: 'warning',
  legalComments: 'inline',
  // ws's optional native speed-ups: ws falls back to JavaScript when they are absent.
  external: ['bufferutil', 'utf-8-validate'],
  // CommonJS dependencies call require() for Node's built-ins; an ES module has none.
  banner: { js: "import { createRequire as __dsyncRequire } from 'node:module'; const require = __dsyncRequire(import.meta.url);" },
}
await build({
  ...common,
  // Worker threads are loaded by file name next to the module that starts them
  // (new URL('./hash-worker.js', import.meta.url)), which esbuild does not follow: every
  // dist/src/**/NAME-worker.js is an entry of its own and sits beside dsync.js. (A list kept
  // by hand missed verify-worker and folders-worker: the installed CLI's pulls stalled.)
  entryPoints: { main: 'dist/cli/main.js', ...workerEntries('dist/src') },
  outExtension: { '.js': '.js' },
})
// package.json's bin: the launcher (cli/launch.ts), which imports main.js beside it by a URL
// it computes (so esbuild leaves that import alone) or runs it as a child for gendsync.
await build({ ...common, entryPoints: { dsync: 'dist/cli/launch.js' } })
// The folder says its files are ES modules. Without it Node finds the module type from the
// nearest package.json up the tree: none for a bundle copied elsewhere (a bench's or a
// packager's copy), and Node 20 then compiles each file as CommonJS first and, on its import
// statements, again as an ES module (~2,000 more page faults a start; session 16).
writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n')

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
