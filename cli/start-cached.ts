import { createHash } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import Module from 'node:module'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import vm from 'node:vm'

/**
 * The bundle's main.js and gendsync.js (scripts/bundle.mjs builds this file under both names):
 * each runs its program, NAME.code.js beside it, from V8's code cache NAME.code.cache when the
 * cache was made from that very program. Compiling main.code.js (1.4 MB) was ~30-40 ms of
 * every command's start on the project's VM, most of a no-change pull's own CPU (the pull
 * itself is 0.03-0.05 s at 50,000 files; docs/SCALE.md, "session 22"). Node 20 has no compile
 * cache of its own (module.enableCompileCache is Node 22).
 *
 * The cache is made when the bundle is built (DSYNC_WRITE_CODE_CACHE, scripts/bundle.mjs) and
 * only read here: an installed package's folder is not ours to write at run time. It starts with
 * the SHA-256 of the program it was made from, because V8 checks only the source's length
 * (plus its own version and flags): a program rebuilt to the same length would otherwise run
 * the old program's compiled functions. A cache V8 refuses (another Node, other V8 flags) or
 * that is missing or damaged costs only its read: the program is compiled as it would be without.
 */
const HASH_BYTES = 32
const self = fileURLToPath(import.meta.url)
const program = join(dirname(self), `${basename(self, '.js')}.code.js`)
const cacheFile = join(dirname(self), `${basename(self, '.js')}.code.cache`)

const bytes = readFileSync(program)
const hash = createHash('sha256').update(bytes).digest()
const cachedData = cacheFor(hash)
// A first line `#!...` is only valid at a script's very start, not inside the wrapper function;
// `//` keeps the length and the line numbers of stack traces.
let source = bytes.toString('utf8')
if (source.startsWith('#!')) source = '//' + source.slice(2)
const script = new vm.Script(Module.wrap(source), {
  filename: program,
  cachedData,
  // The program has no import() of its own (esbuild resolves them); this keeps Node's behaviour if one appears.
  importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER,
})
if (process.env.DSYNC_WRITE_CODE_CACHE === '1') process.once('exit', () => writeCache(script))
if (process.env.DSYNC_DEBUG_CODE_CACHE === '1') {
  process.stderr.write(`code cache: ${cachedData ? (script.cachedDataRejected ? 'refused by V8' : 'used') : 'none for this program'}\n`)
}

const mod = new Module(program)
mod.filename = program
const run = script.runInThisContext() as (this: unknown, ...args: unknown[]) => void
run.call(mod.exports, mod.exports, Module.createRequire(program), mod, program, dirname(program))

/** The V8 data of NAME.code.cache if it was made from the program whose SHA-256 is `hash`. */
function cacheFor(hash: Buffer): Buffer | undefined {
  let data: Buffer
  try {
    data = readFileSync(cacheFile)
  } catch {
    return undefined
  }
  if (data.length <= HASH_BYTES || !data.subarray(0, HASH_BYTES).equals(hash)) return undefined
  return data.subarray(HASH_BYTES)
}

/**
 * At exit, so that the functions the run compiled are in it too, not only the top level; written
 * beside and renamed, so that a reader sees the old cache or the new one, never half of one.
 */
function writeCache(s: vm.Script): void {
  const tmp = `${cacheFile}.${process.pid}.tmp`
  writeFileSync(tmp, Buffer.concat([hash, s.createCachedData()]))
  renameSync(tmp, cacheFile)
}
