import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { test } from 'node:test'
import { runCli } from '../testbed/cli.js'

test('the embedded demo (npm start) bootstraps a mirror from three hosts, updates it, and cleans up', { timeout: 120_000 }, async () => {
  const r = await runCli(['demo'])
  assert.equal(r.code, 0, r.stdout + r.stderr)
  const folder = /demo folder: (\S+)/.exec(r.stdout)?.[1]
  assert.ok(folder && !existsSync(folder), 'the demo folder is removed')
  const syncs = r.stdout.split('\n').filter(l => l.startsWith('sync: '))
  assert.equal(syncs.length, 2, r.stdout)
  assert.match(syncs[0], /^sync: 303 added, 0 changed, 0 removed/)
  assert.match(syncs[1], /^sync: 0 added, 4 changed, 0 removed/)
  // The bootstrap drew on all three hosts.
  const firstBlock = r.stdout.slice(r.stdout.indexOf(syncs[0]), r.stdout.indexOf('upstream changed'))
  assert.equal((firstBlock.match(/ from 127\.0\.0\.[234]:\d+: /g) ?? []).length, 3, firstBlock)
})
