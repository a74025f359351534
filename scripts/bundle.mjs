// `npm run bundle` (and `npm pack`, through prepack): the CLI and its worker threads as
// self-contained ES modules in dist/bundle/, so the published package has no runtime
// dependencies (none of webtorrent's install scripts, no node-datachannel binary: the
// webrtc-polyfill stub is what gets bundled). Reads the tsc output in dist/.
import { build } from 'esbuild'
import { rmSync } from 'node:fs'

const out = 'dist/bundle'
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
  // (new URL('./hash-worker.js', import.meta.url)): they sit beside dsync.js.
  entryPoints: {
    dsync: 'dist/cli/main.js',
    'hash-worker': 'dist/src/manifest/hash-worker.js',
    'walk-worker': 'dist/src/manifest/walk-worker.js',
    'stage-worker': 'dist/src/sync/stage-worker.js',
  },
  outExtension: { '.js': '.js' },
})
