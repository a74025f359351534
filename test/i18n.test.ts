import assert from 'node:assert/strict'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { localeOfAcceptLanguage } from '../src/i18n/index.js'
import { messages } from '../src/i18n/messages.js'
import { runCli, type RunResult } from '../testbed/cli.js'
import { hostileInfos, torrentOf } from '../testbed/craft.js'
import { makeHome, tempDir } from '../testbed/tree.js'

// Every message in English and Korean with the same placeholders (the main catalogue and
// every area file under src/i18n/areas/), and one Korean run of each kind of user-facing
// error: the exit code, one line, Hangul, and the file/peer/path still named.

const HANGUL = /[\uac00-\ud7a3]/
const placeholders = (s: string) => [...new Set([...s.matchAll(/\{(\w+)\}/g)].map(m => m[1]))].sort()

test('the en and ko catalogues have the same keys and the same placeholders, area files included', async () => {
  const problems: string[] = []
  for (const [id, entry] of Object.entries(messages) as [string, { en?: string; ko?: string }][]) {
    if (typeof entry.en !== 'string' || entry.en.trim() === '') problems.push(`${id}: no English`)
    if (typeof entry.ko !== 'string' || entry.ko.trim() === '') problems.push(`${id}: no Korean`)
    else if (!HANGUL.test(entry.ko) && /[a-z]{4,}/.test((entry.en ?? '').replace(/\{\w+\}/g, ''))) problems.push(`${id}: the Korean text has no Hangul: ${entry.ko}`)
    if (typeof entry.en === 'string' && typeof entry.ko === 'string') {
      const en = placeholders(entry.en).join(',')
      const ko = placeholders(entry.ko).join(',')
      if (en !== ko) problems.push(`${id}: placeholders differ: en {${en}} ko {${ko}}`)
    }
  }
  // Every area file is merged into the catalogue (a file not spread into areas.ts is never shown).
  const areaDir = fileURLToPath(new URL('../src/i18n/areas/', import.meta.url))
  const areaFiles = readdirSync(areaDir).filter(f => f.endsWith('.js'))
  for (const file of areaFiles) {
    const mod = await import(join(areaDir, file)) as Record<string, Record<string, unknown>>
    for (const [name, catalogue] of Object.entries(mod)) {
      for (const id of Object.keys(catalogue)) if (!(id in messages)) problems.push(`${file} ${name}.${id}: not in the merged catalogue (areas.ts)`)
    }
  }
  assert.deepEqual(problems, [])
  assert.ok(Object.keys(messages).length > 100, `the whole catalogue was read (${Object.keys(messages).length} messages)`)
})

const ko = (args: string[]) => runCli(args, { env: { LANG: 'ko_KR.UTF-8' } })

function assertKorean(r: RunResult, code: number, mustName: (string | RegExp)[]): void {
  assert.equal(r.code, code, r.stdout + r.stderr)
  const lines = r.stderr.trim().split('\n')
  assert.equal(lines.length, 1, r.stderr)
  assert.match(lines[0], /^dsync: /)
  assert.match(lines[0], HANGUL, `Korean: ${lines[0]}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /)
  for (const n of mustName) {
    if (typeof n === 'string') assert.ok(lines[0].includes(n), `"${n}" named in: ${lines[0]}`)
    else assert.match(lines[0], n)
  }
}

test('LANG=ko_KR.UTF-8: each class of user-facing error is one Korean line that still names what failed', async () => {
  const base = tempDir()
  const h = makeHome(base, {})

  // 1 failed: asking a host that is not running.
  assertKorean(await ko(['--home', h.home, 'status']), 1, [h.home])
  // 2 usage: a source that is no source.
  assertKorean(await ko(['pull', 'ftp://example.invalid/rocky', join(base, 'd')]), 2, ['ftp://example.invalid/rocky'])
  // 3 config: a bad line in xync.conf.
  const bad = makeHome(join(base, 'bad'), {})
  writeFileSync(join(bad.home, 'xync.conf'), `webroot=${bad.webroot}\nport=99999\n`)
  assertKorean(await ko(['--home', bad.home, 'gendsync']), 3, [`${join(bad.home, 'xync.conf')}:2:`])
  // 4 bad data: a hostile .torrent.
  const torrent = join(base, 'evil.torrent')
  writeFileSync(torrent, torrentOf(hostileInfos[0][1]()))
  assertKorean(await ko(['pull', torrent, join(base, 'd')]), 4, [torrent, '../evil'])
  // 5 filesystem: a .torrent path that does not exist.
  assertKorean(await ko(['pull', join(base, 'missing.torrent'), join(base, 'd')]), 5, [join(base, 'missing.torrent')])
  // 6 network: a dtp:// host that does not answer.
  assertKorean(await ko(['pull', 'dtp://127.0.12.9:9/rocky', join(base, 'd')]), 6, ['127.0.12.9:9'])
  // 7 locked: another live process (this test) holds the repository's lock.
  const save = join(h.webroot, 'rocky')
  writeFileSync(join(h.home, 'repos/rocky.conf'), `repo=rocky\nsave=${save}\ndsync-url=dtp://127.0.12.9:9/rocky\n`)
  const { mkdirSync } = await import('node:fs')
  mkdirSync(join(save, '.dsync'), { recursive: true })
  writeFileSync(join(save, '.dsync/lock'), `${process.pid}\n`)
  assertKorean(await ko(['--home', h.home, 'sync', 'rocky']), 7, [String(process.pid)])
})

test('the status page language from Accept-Language: the first of en/ko by weight, then order; English otherwise', () => {
  const cases: [string | undefined, string][] = [
    ['ko-KR,ko;q=0.9,en-US;q=0.8', 'ko'], ['en-US,en;q=0.9,ko;q=0.8', 'en'], ['fr-FR, ko;q=0.5', 'ko'],
    ['en;q=0.2, ko;q=0.8', 'ko'], ['ko;q=0, en', 'en'], ['de, fr', 'en'], ['', 'en'], [undefined, 'en'], ['KO', 'ko'],
  ]
  for (const [header, want] of cases) assert.equal(localeOfAcceptLanguage(header), want, `Accept-Language: ${header}`)
})
