import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost } from '../testbed/host.js'
import { tempDir } from '../testbed/tree.js'

/**
 * A hostile host's text must not drive the user's terminal (issue 10): its motd and the file
 * names of its repository carry clear-screen, window-title, OSC 52 clipboard-write and an
 * 8-bit CSI; nothing of them may reach stdout or stderr raw, in text or --json output.
 */
const H = '127.0.3.85'
const ME = '127.0.3.86'
const EVIL_NAME = 'pool/evil\x1b]0;owned\x07\u009b2J\u202eb.deb'
const MOTD = 'Welcome\x1b[2J\x1b]0;title\x07\x1b]52;c;cHduZWQ=\x07\u009b31m to the mirror\n'
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/

test('remote text (motd, file names) reaches the terminal without control sequences', async () => {
  const host = await prepareHost(H, { deb: { 'pool/a.deb': 'package a\n', [EVIL_NAME]: 'package b\n' } })
  const motdFile = join(host.base, 'evil.motd')
  writeFileSync(motdFile, MOTD)
  await startHost(host, ['deb'])
  writeFileSync(join(host.home, 'dtp', 'motd.conf'), `경로=${motdFile}\n`)
  assert.equal((await host.cli('reload')).code, 0)
  const source = `dtp://${H}:${HOST_PORT}/deb`

  const diff = await runCli(['diff', source, join(tempDir(), 'm1'), '--bind', ME])
  assert.equal(diff.code, 0, diff.stderr)
  assert.match(diff.stdout, /evil/, 'the file name is listed')
  assert.match(diff.stdout, /\\x1b\]0;owned\\x07\\x9b2J\\u202eb\.deb/, 'shown escaped')
  assert.doesNotMatch(diff.stdout, RAW_CONTROL)

  const pull = await runCli(['pull', source, join(tempDir(), 'm2'), '--bind', ME])
  assert.equal(pull.code, 0, pull.stderr)
  assert.match(pull.stderr, /Welcome\\x1b\[2J.*to the mirror/, 'the motd is shown, escaped')
  assert.doesNotMatch(pull.stderr, RAW_CONTROL)
  assert.doesNotMatch(pull.stdout, RAW_CONTROL)

  const json = await runCli(['--json', 'diff', source, join(tempDir(), 'm3'), '--bind', ME])
  assert.equal(json.code, 0, json.stderr)
  assert.doesNotMatch(json.stdout, RAW_CONTROL)
  const summary = JSON.parse(json.stdout.trim().split('\n').pop()!) as { plan: { added: string[] } }
  assert.ok(summary.plan.added.includes(EVIL_NAME), 'the JSON still carries the exact name')
})

test('--bind: the HTTP requests of a dtp:// pull leave from the bound address', async () => {
  const B = '127.0.3.87'
  const BOUND = '127.0.3.88'
  const host = await prepareHost(B, { deb: { 'pool/a.deb': 'package a\n', 'dists/Release': 'Release\n' } })
  await startHost(host, ['deb'])
  // The host lets in only the bound address: a request from any other one is reset.
  writeFileSync(join(host.home, 'dtp', 'firewall.conf'), `allow=${BOUND}\n`)
  assert.equal((await host.cli('reload')).code, 0)
  const dest = join(tempDir(), 'm')
  const r = await runCli(['pull', `dtp://${B}:${HOST_PORT}/deb`, dest, '--bind', BOUND])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(readFileSync(join(dest, 'pool/a.deb'), 'utf8'), 'package a\n')
})
