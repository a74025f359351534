import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { indexLines } from '../src/manifest/manifest-lines.js'
import { runCli } from '../testbed/cli.js'
import { tempDir } from '../testbed/tree.js'

/**
 * A hinted gendsync keeps the new list's line offsets in .dsync/lines (src/manifest/line-cache.ts)
 * and the next hinted run takes them instead of indexing the list again. They are only a cache:
 * offsets that are not the list's, even in a file sealed as the run seals it, must not be used,
 * and the hinted run must still write what a first run of a copy of the tree writes.
 */
const OLD = new Date('2024-01-02T03:04:05Z')

function setup(): { base: string; save: string; home: string } {
  const base = tempDir()
  const save = join(base, 'web', 'pool')
  const home = join(base, 'home')
  for (let i = 0; i < 300; i++) {
    const dir = join(save, 'pool', `p${i % 7}`)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `f${i}.deb`), `file ${i}\n`.repeat(1 + (i % 5)))
    utimesSync(join(dir, `f${i}.deb`), OLD, OLD)
  }
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${join(base, 'web')}\n`)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${save}\ndsync=true\n`)
  return { base, save, home }
}

async function gendsync(home: string, ...args: string[]): Promise<{ stderr: string; hashedFiles: number }> {
  const r = await runCli(['--home', home, '--json', 'gendsync', ...args])
  assert.equal(r.code, 0, r.stderr)
  return { ...JSON.parse(r.stdout) as { hashedFiles: number }, stderr: r.stderr }
}

/** data.dsync, the torrent and the magnet link, as bytes by name. */
function outputs(save: string): Record<string, string> {
  const dir = join(save, '.dsync')
  return Object.fromEntries(['data.dsync', 'pool.torrent', 'pool.magnet'].map(n => [n, readFileSync(join(dir, n)).toString('base64')]))
}

/** The outputs of a first gendsync of a copy of the tree (cp -a: folders' mtimes kept) under another home, without a previous generation. */
async function fromScratch(save: string, base: string): Promise<Record<string, string>> {
  const copy = join(base, 'scratch', 'pool')
  rmSync(join(base, 'scratch'), { recursive: true, force: true })
  mkdirSync(copy, { recursive: true })
  execFileSync('cp', ['-a', join(save, 'pool'), join(copy, 'pool')])
  const home = join(base, 'scratch-home')
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${join(base, 'scratch')}\n`)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${copy}\ndsync=true\n`)
  await gendsync(home)
  return outputs(copy)
}

/** A new file in the tree, and the hint naming it. */
function add(base: string, save: string, name: string): string {
  writeFileSync(join(save, 'pool', 'p3', name), `${name}\n`)
  utimesSync(join(save, 'pool', 'p3', name), OLD, OLD)
  const hint = join(base, `hint-${name}`)
  writeFileSync(hint, `pool/p3/${name}\n`)
  return hint
}

test('a hinted run keeps the new list\'s line offsets; the next takes them only when they are the list\'s', async () => {
  const { base, save, home } = setup()
  await gendsync(home)
  const hinted = await gendsync(home, '--changed', add(base, save, 'a.deb'))
  assert.equal(hinted.hashedFiles, 1)

  // .dsync/lines: a head naming data.dsync by its SHA-256, every line's offset, a seal.
  const list = readFileSync(join(save, '.dsync', 'data.dsync'))
  const file = join(save, '.dsync', 'lines')
  const bytes = readFileSync(file)
  const head = bytes.toString('latin1', 0, 128).trim().split(' ')
  const table = indexLines(list)
  assert.ok(typeof table !== 'string')
  assert.deepEqual(head, ['DSYNC-LINES', '1', createHash('sha256').update(list).digest('hex'), String(table.count)])
  const starts = new Uint32Array(bytes.buffer.slice(bytes.byteOffset + 128, bytes.byteOffset + bytes.length - 32))
  assert.deepEqual([...starts], [...table.starts])
  assert.ok(createHash('sha256').update(bytes.subarray(0, bytes.length - 32)).digest().equals(bytes.subarray(bytes.length - 32)))

  // Taken by the next hinted run: the same outputs as a first run of a copy.
  await gendsync(home, '--changed', add(base, save, 'b.deb'))
  assert.deepEqual(outputs(save), await fromScratch(save, base))

  // Offsets that are not the list's, sealed again so that only their fit to the list can tell:
  // a line's offset moved into the line before (after a newline all the same, it cannot be: so
  // moved to the start of the line before it would repeat an offset) and one line left out.
  const reseal = (edit: (s: Uint32Array) => Uint32Array) => {
    const now = readFileSync(file)
    const offsets = edit(new Uint32Array(now.buffer.slice(now.byteOffset + 128, now.byteOffset + now.length - 32)))
    const h = Buffer.from(now.subarray(0, 128).toString('latin1').replace(/ (\d+) *\n$/, m => ` ${offsets.length - 1}`.padEnd(m.length - 1, ' ') + '\n'), 'latin1')
    const body = Buffer.from(offsets.buffer, offsets.byteOffset, offsets.byteLength)
    writeFileSync(file, Buffer.concat([h, body, createHash('sha256').update(h).update(body).digest()]))
  }
  const cases: [string, (s: Uint32Array) => Uint32Array][] = [
    ['an offset inside its line', s => { s[5] += 3; return s }],
    ['a line left out, the count with it', s => Uint32Array.from([...s.subarray(0, 5), ...s.subarray(6)])],
    ['a line left out, another line split', s => Uint32Array.from([...s.subarray(0, 5), ...s.subarray(6, 9), s[9] + 2, ...s.subarray(9)])],
  ]
  for (const [what, edit] of cases) {
    reseal(edit)
    const again = await gendsync(home, '--changed', add(base, save, `${cases.findIndex(c => c[0] === what)}.deb`))
    assert.doesNotMatch(again.stderr, /not used/, `${what}: the hint was used, not a full walk`)
    assert.deepEqual(outputs(save), await fromScratch(save, base), `${what}: the outputs differ from a first run's`)
  }
})
