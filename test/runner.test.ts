import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { CLI, runCli } from '../testbed/cli.js'
import { hasRsync, startRsyncd, type Rsyncd } from '../testbed/rsyncd.js'
import { tempDir, writeTree } from '../testbed/tree.js'

// The runner's tests use 127.0.13.x: rsync daemons, webhook receiver, DTP hosts, ipadd sources.
const skip = hasRsync ? false : 'rsync is not installed'

/** A dsync home whose repos sync from upstreams; `repos` maps name -> repo conf lines. */
function home(base: string, main: string, repos: Record<string, string>): { home: string; webroot: string; save(r: string): string } {
  const h = join(base, 'home')
  const webroot = join(base, 'web')
  mkdirSync(join(h, 'repos'), { recursive: true })
  mkdirSync(webroot, { recursive: true })
  writeFileSync(join(h, 'xync.conf'), `webroot=${webroot}\n${main}`)
  for (const [name, conf] of Object.entries(repos)) writeFileSync(join(h, 'repos', `${name}.conf`), `repo=${name}\nsave=${name}\nretries=0\n${conf}`)
  return { home: h, webroot, save: r => join(webroot, r) }
}

/**
 * An rsync wrapper (DSYNC_RSYNC) that records, before each real rsync run, the time and the
 * destination's files with their contents: what a mirror user would see at that moment.
 */
function recordingRsync(dir: string): { bin: string; runs(): { start: number; end: number; dest: string; files: Record<string, string> }[] } {
  const bin = join(dir, 'rsync-recorder.sh')
  const rec = join(dir, 'rsync-runs')
  mkdirSync(rec, { recursive: true })
  writeFileSync(bin, `#!/bin/sh
for last; do :; done
n=$(date +%s%N)
out="${rec}/$n.$$"
case "$last" in rsync://*) exec rsync "$@";; esac
{ echo "start $(date +%s%N)"; echo "dest $last"
  find "$last" -type f -not -path '*/.dsync/*' | sort | while read f; do echo "file $f $(head -c 40 "$f" | tr '\\n' ' ')"; done; } > "$out"
rsync "$@"; rc=$?
echo "end $(date +%s%N)" >> "$out"
exit $rc
`)
  chmodSync(bin, 0o755)
  return {
    bin,
    runs: () => readdirSync(rec).sort().map(name => {
      const lines = readFileSync(join(rec, name), 'utf8').trim().split('\n')
      const get = (k: string) => lines.find(l => l.startsWith(k + ' '))?.slice(k.length + 1) ?? ''
      const dest = get('dest')
      const files: Record<string, string> = {}
      for (const l of lines.filter(x => x.startsWith('file '))) {
        const [path, ...content] = l.slice(5).split(' ')
        files[path.slice(dest.length).replace(/^\//, '')] = content.join(' ').trim()
      }
      return { start: Number(get('start')) / 1e6, end: Number(get('end')) / 1e6, dest, files }
    }),
  }
}

/** An HTTP listener standing in for Slack/Discord: records every JSON body POSTed to it. */
async function webhookReceiver(address: string): Promise<{ url: string; bodies: Record<string, unknown>[]; close(): void }> {
  const bodies: Record<string, unknown>[] = []
  const server = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', d => (body += d))
    req.on('end', () => {
      bodies.push({ ...JSON.parse(body), _method: req.method, _type: req.headers['content-type'] })
      res.end('ok')
    })
  })
  await new Promise<void>(r => server.listen(0, address, r))
  const port = (server.address() as AddressInfo).port
  const close = () => {
    server.close()
    server.closeAllConnections()
  }
  after(close)
  return { url: `http://${address}:${port}/hook`, bodies, close }
}

function read(path: string): string {
  return readFileSync(path, 'utf8')
}

const NEW_MTIME = new Date('2024-03-04T05:06:07Z')

const DEB_V1 = {
  'pool/main/a/a_1.deb': 'package a version 1',
  'pool/main/o/old_1.deb': 'an old package',
  'dists/stable/main/binary-amd64/Packages': 'Packages v1: a_1 old_1',
  'dists/stable/Release': 'Release v1',
}

/** The upstream moves on: a new package, new index files naming it, an old package gone. */
function debV2(upstream: string): void {
  const files = {
    'pool/main/b/b_1.deb': 'package b version 1',
    'dists/stable/main/binary-amd64/Packages': 'Packages v2: a_1 b_1',
    'dists/stable/Release': 'Release v2',
  }
  writeTree(upstream, files)
  // Changed files get a newer mtime, as on a real upstream (rsync compares size and mtime).
  for (const rel of Object.keys(files)) utimesSync(join(upstream, rel), NEW_MTIME, NEW_MTIME)
  rmSync(join(upstream, 'pool/main/o/old_1.deb'))
}

/** The files of a tree (path -> content), our own .dsync/ left out. */
function treeOf(root: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${e.name}` : e.name
    if (path === '.dsync') continue
    if (e.isDirectory()) Object.assign(out, treeOf(root, path))
    else out[path] = read(join(root, path))
  }
  return out
}

test('rsync first hop: two stages (index files and deletions last), .dsync kept, status=DIR, webhook JSON', { skip }, async () => {
  const base = tempDir('dsync-runner-')
  const upstream = join(base, 'upstream')
  writeTree(upstream, DEB_V1)
  const rsyncd = await startRsyncd(base, '127.0.13.5', { debian: upstream })
  const hook = await webhookReceiver('127.0.13.9')
  const h = home(base, `status=${join(base, 'st')}\nwebhookurl=${hook.url}\n`, { deb: `rsync-url=${rsyncd.url('debian')}\n` })
  writeTree(join(h.save('deb'), '.dsync'), { keep: 'ours' })
  const rec = recordingRsync(base)
  const env = { DSYNC_RSYNC: rec.bin }

  const first = await runCli(['--home', h.home], { env })
  assert.equal(first.code, 0, first.stderr + first.stdout)
  assert.deepEqual(treeOf(h.save('deb')), DEB_V1)
  assert.equal(read(join(h.save('deb'), '.dsync', 'keep')), 'ours', 'rsync must not delete our .dsync/')
  assert.equal(read(join(base, 'st', 'dsync-status', 'deb')).trim(), '1')
  hook.close()
  assert.equal(hook.bodies.length, 1)
  const body = hook.bodies[0]
  assert.equal(body._method, 'POST')
  assert.equal(body._type, 'application/json')
  assert.equal(body.repo, 'deb')
  assert.equal(body.result, 'ok')
  assert.ok(typeof body.text === 'string' && body.text.includes('deb'), 'Slack reads text')
  assert.equal(body.content, body.text, 'Discord reads content')
  assert.ok(typeof body.bytes === 'number' && body.bytes > 0, `bytes: ${body.bytes}`)
  assert.ok(typeof body.duration === 'number')

  // The upstream moves on. When stage 2 starts, a mirror user must see the new package but
  // the old index files (which do not name it yet), and the old package not yet deleted.
  debV2(upstream)
  const before = rec.runs().length
  const second = await runCli(['--home', h.home, 'run'], { env })
  assert.equal(second.code, 0, second.stderr + second.stdout)
  const runs = rec.runs().slice(before)
  assert.equal(runs.length, 2, 'two rsync stages')
  const atStage2 = runs[1].files
  assert.equal(atStage2['pool/main/b/b_1.deb'], 'package b version 1', 'new package arrives in stage 1')
  assert.equal(atStage2['dists/stable/Release'], 'Release v1', 'index files wait for stage 2')
  assert.equal(atStage2['dists/stable/main/binary-amd64/Packages'], 'Packages v1: a_1 old_1')
  assert.ok('pool/main/o/old_1.deb' in atStage2, 'deletions wait for stage 2')
  assert.deepEqual(treeOf(h.save('deb')), treeOf(upstream))
})

test('ftpsync=true: ftpsync.conf variables, two stages with index files last, trace file, -sync REPO', { skip }, async () => {
  const base = tempDir('dsync-runner-')
  const upstream = join(base, 'upstream')
  writeTree(upstream, DEB_V1)
  const rsyncd = await startRsyncd(base, '127.0.13.6', { kali: upstream })
  const h = home(base, 'logdir=true\n', {})
  writeFileSync(join(h.home, 'repos', 'kali.conf'), [
    'repo=kali', `save=${join(h.webroot, 'kali')}`, 'ftpsync=true', 'retries=0', '',
    '# pasted from ftpsync.conf', 'MIRRORNAME="mirror.test.example"', `TO="${join(h.webroot, 'kali')}/"`,
    `RSYNC_HOST="${rsyncd.address}"`, `RSYNC_PORT=${rsyncd.port}`, 'RSYNC_PATH="kali"', 'INFO_COUNTRY=KR', 'INFO_MAINTAINER="Ops <ops@example.org>"', '',
  ].join('\n'))
  const rec = recordingRsync(base)
  const env = { DSYNC_RSYNC: rec.bin }
  const first = await runCli(['--home', h.home, '-sync', 'kali'], { env })
  assert.equal(first.code, 0, first.stderr + first.stdout)
  const save = join(h.webroot, 'kali')
  const trace = read(join(save, 'project', 'trace', 'mirror.test.example'))
  assert.match(trace, /^\w{3}, \d\d \w{3} \d{4} [\d:]+ UTC\n/, 'first line: the date, as ftpsync writes it')
  assert.match(trace, /^Upstream-mirror: 127\.0\.13\.6$/m)
  assert.match(trace, /^Country: KR$/m)
  assert.match(trace, /^Maintainer: Ops <ops@example.org>$/m)
  assert.ok(!existsSync(join(save, 'Archive-Update-in-Progress-mirror.test.example')), 'ftpsync lock removed after the run')
  const { 'project/trace/mirror.test.example': _trace, ...mirrored } = treeOf(save)
  assert.deepEqual(mirrored, DEB_V1)

  debV2(upstream)
  const before = rec.runs().length
  const second = await runCli(['--home', h.home, '-sync', 'kali'], { env })
  assert.equal(second.code, 0, second.stderr + second.stdout)
  const runs = rec.runs().slice(before)
  assert.equal(runs.length, 2, 'ftpsync runs two stages')
  assert.ok('Archive-Update-in-Progress-mirror.test.example' in runs[0].files, "ftpsync's lock is in the tree while it syncs")
  const atStage2 = runs[1].files
  assert.equal(atStage2['pool/main/b/b_1.deb'], 'package b version 1')
  assert.equal(atStage2['dists/stable/Release'], 'Release v1')
  assert.equal(atStage2['dists/stable/main/binary-amd64/Packages'], 'Packages v1: a_1 old_1')
  assert.ok('pool/main/o/old_1.deb' in atStage2)
  const { 'project/trace/mirror.test.example': _t2, ...after } = treeOf(save)
  assert.deepEqual(after, treeOf(upstream))
  const log = read(join(h.home, 'logs', 'kali', 'kali.log'))
  assert.match(log, /--max-delete=40000 --delay-updates --delete --delete-delay/, "stage 2 uses ftpsync's capped, delayed deletes")
})
