import assert from 'node:assert/strict'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli } from '../testbed/cli.js'
import { makeHome, tempDir } from '../testbed/tree.js'

// Integer options share one parser with ranges (src/config/integers.ts): a bad value is one
// line naming the flag and the range, exit 2 (usage), before anything runs.
const cases: [string, string[], RegExp][] = [
  ['--threads NaN', ['gendsync', '--threads', 'NaN'], /--threads: expected a whole number from 1 to 256, got "NaN"/],
  ['--threads 0', ['gendsync', '--threads', '0'], /--threads: .* from 1 to 256, got "0"/],
  ['--seed-port above 65535', ['pull', '--seed', '--seed-port', '70000', 'dtp://127.0.0.1/x', 'dest'], /--seed-port: .* from 1 to 65535, got "70000"/],
  ['--connections 0', ['pull', '--connections', '0', 'dtp://127.0.0.1/x', 'dest'], /--connections: .* from 1 to 1000, got "0"/],
  ['--connections 1e3', ['sync', '--connections', '1e3'], /--connections: .* got "1e3"/],
  ['--retries -1', ['sync', '--retries=-1'], /--retries: .* from 0 to 100, got "-1"/],
  ['tracker --port 0x10', ['tracker', '--port', '0x10'], /--port: .* from 0 to 65535, got "0x10"/],
]

for (const [name, args, message] of cases) {
  test(`integer option refused: ${name}`, async () => {
    const cwd = tempDir()
    const r = await runCli(['--home', join(cwd, 'nohome'), ...args], { cwd })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, message)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.ok(!existsSync(join(cwd, 'dest')), 'nothing was written')
  })
}

test('a repo config value out of range names file and line (the same ranges as the flags)', async () => {
  const h = makeHome(tempDir(), {})
  const conf = join(h.home, 'repos', 'rocky.conf')
  writeFileSync(conf, 'repo=rocky\nsave=rocky\ndsync-url=dtp://127.0.0.1/rocky\nconnections=5000\n')
  const r = await runCli(['--home', h.home, 'sync', 'rocky'])
  assert.equal(r.code, 3, r.stderr)
  assert.match(r.stderr, new RegExp(`${conf}:4: .*expected a whole number from 1 to 1000, got "5000"`))
})
