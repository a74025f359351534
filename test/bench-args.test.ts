import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

/**
 * A benchmark given an argument it does not know, or a count that is not one, stops at once
 * with one line naming its options' file and exit code 2 (`npm run bench -- NAME`, bench/run.ts):
 * a typo must not run a half-hour bench with its defaults, or with NaN peers. The runs are
 * bounded by a timeout: a bench that ignored the argument would start measuring, and it is
 * killed with everything it started (its own process group: hosts, trackers).
 */
const RUN = fileURLToPath(new URL('../bench/run.js', import.meta.url))

function bench(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [RUN, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => (stdout += d))
    child.stderr.on('data', d => (stderr += d))
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const CASES: [name: string, args: string[], says: RegExp][] = [
  ['host', ['--bogus'], /unknown argument --bogus/],
  ['host', ['--files', '20k'], /--files needs a whole number/],
  ['host', ['--leechers', '0'], /--leechers needs a whole number of at least 1/],
  ['tracker', ['--no-such-flag'], /unknown argument --no-such-flag/],
  ['tracker', ['--peers', 'x'], /--peers needs a whole number/],
  ['tracker', ['--seconds'], /--seconds needs a value/],
  ['gendsync', ['--bogus'], /unknown argument --bogus/],
  ['scale', ['--bogus'], /unknown argument --bogus/],
  ['host-abuse', ['--bogus'], /unknown option --bogus/],
  ['host-abuse', ['--rounds', '1.5'], /--rounds needs a whole number/],
]

for (const [name, args, says] of CASES) {
  test(`bench ${name} ${args.join(' ')}: one line, exit 2, nothing run`, async () => {
    const r = await bench(name, ...args)
    assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr.slice(0, 400)}`)
    assert.equal(r.stdout, '')
    const lines = r.stderr.split('\n').filter(l => l !== '')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0], says)
    assert.match(lines[0], new RegExp(`bench/${name}\\.ts`))
  })
}
