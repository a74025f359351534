import assert from 'node:assert/strict'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Browser } from 'puppeteer-core'
import type { HostStatus } from '../src/host/status.js'
import { HOST_PORT } from '../testbed/host.js'
import { WireLeecher } from '../testbed/leecher.js'
import { sharedTree, startSharedHost } from '../testbed/shared-hosts.js'
import { tempDir } from '../testbed/tree.js'

// The status page in Debian's chromium, driven by puppeteer-core (which never downloads a
// browser). Host on 127.0.14.20, the peer from 127.0.14.21.
const CHROMIUM = process.env.DSYNC_CHROMIUM ?? '/usr/bin/chromium'
const HOST = '127.0.14.20'

async function launch(): Promise<Browser | string> {
  if (!existsSync(CHROMIUM)) return `no browser at ${CHROMIUM} (apt install chromium)`
  let launchBrowser: typeof import('puppeteer-core').launch
  try {
    launchBrowser = (await import('puppeteer-core')).launch
  } catch (err) {
    return `puppeteer-core not installed: ${(err as Error).message}`
  }
  // Chromium refuses to start its sandbox as root (CI runs as root).
  const args = ['--disable-gpu', '--disable-dev-shm-usage', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])]
  return launchBrowser({ executablePath: CHROMIUM, headless: true, args })
}

const HOSTILE_MOTD = `Welcome <script>window.__pwned = 'motd-script'</script><img src=x onerror="window.__pwned = 'motd-img'"> & "friends"\n`
const HOSTILE_FOLDER = `<img src=x onerror=window.__pwned='list'>`

test('status page in chromium: repositories render, a peer appears without reloading, hostile text stays text', { timeout: 90_000 }, async t => {
  const browser = await launch()
  if (typeof browser === 'string') return t.skip(browser)
  t.after(() => browser.close())
  const tree = await sharedTree({ 'pool/a.deb': Buffer.alloc(200_000, 1), 'dists/InRelease': 'Suite: x\n' })
  const motdFile = join(tempDir(), 'welcome.motd')
  writeFileSync(motdFile, HOSTILE_MOTD)
  await startSharedHost(tree, HOST, '', '', {
    'motd.conf': `경로=${motdFile}\n`,
    // A folder named in list.conf but not published is listed as "not served", by name.
    'list.conf': `/${tree.repo}\n/${HOSTILE_FOLDER}\n`,
  })
  const base = `http://${HOST}:${HOST_PORT}`
  const status = await (await fetch(`${base}/status.json`)).json() as HostStatus
  const rocky = status.repos.find(r => r.repo === 'rocky')!

  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', err => errors.push(String(err)))
  const res = await page.goto(`${base}/`, { waitUntil: 'load' })
  assert.equal(res?.status(), 200)
  const cell = (cls: string) => page.$eval(`tr[data-repo="rocky"] td.${cls}`, el => el.textContent ?? '')
  assert.equal(await cell('files'), String(rocky.files))
  assert.equal(await cell('generation'), rocky.generation.slice(0, 12))
  assert.match(await cell('size'), /^\d+(\.\d+)? (B|KiB|MiB)$/)
  assert.match(await cell('age'), /^\d+ (s|min)$/)
  assert.equal(await cell('peers'), '0')
  assert.match(await cell('rate'), /\/s$/)

  // Hostile text is shown as text: no element made of it, no script run.
  assert.equal(await page.$eval('pre.motd', el => el.textContent), HOSTILE_MOTD)
  assert.ok((await page.$$eval('ul.refused .what', els => els.map(e => e.textContent))).includes(`/${HOSTILE_FOLDER}`))
  assert.equal(await page.$$eval('img', els => els.length), 0)
  assert.equal(await page.$$eval('script', els => els.length), 1, 'only the page script')
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned), undefined)

  // A peer connects: the page shows it on its next refresh, with no reload.
  await page.evaluate(() => ((window as unknown as { __same?: number }).__same = 1))
  const user = new WireLeecher(HOST, HOST_PORT, '127.0.14.21', tree.infoHash)
  await user.waitUnchoked()
  await page.waitForFunction(() => document.querySelector('tr[data-repo="rocky"] td.peers')?.textContent === '1', { timeout: 30_000 })
  assert.equal(await page.evaluate(() => (window as unknown as { __same?: number }).__same), 1, 'updated in place, not reloaded')
  user.close()
  await page.waitForFunction(() => document.querySelector('tr[data-repo="rocky"] td.peers')?.textContent === '0', { timeout: 30_000 })
  // Still no script run after refreshes (innerHTML of the server's escaped fragment).
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned), undefined)
  assert.equal(await page.$$eval('img', els => els.length), 0)
  assert.deepEqual(errors, [])

  // The reader's language: chromium's default Accept-Language (en-US) gets English; a Korean
  // browser gets Korean labels; `?lang=ko` stays Korean across the page's own refreshes.
  assert.equal(await page.title(), 'DTP host')
  const ko = await browser.newPage()
  await ko.setExtraHTTPHeaders({ 'Accept-Language': 'ko-KR,ko;q=0.9,en-US;q=0.5' })
  await ko.goto(`${base}/`, { waitUntil: 'load' })
  assert.equal(await ko.title(), 'DTP 호스트')
  assert.deepEqual((await ko.$$eval('thead th', els => els.map(el => el.textContent))).slice(0, 4), ['저장소', '세대', '경과', '파일'])
  assert.match(await ko.$eval('tr[data-repo="rocky"] td.age', el => el.textContent ?? ''), /^\d+(초|분)$/)
  const chosen = await browser.newPage()
  await chosen.goto(`${base}/?lang=ko`, { waitUntil: 'load' })
  const host = () => chosen.$eval('p.host', el => el.textContent ?? '')
  const first = await host()
  assert.match(first, /^수신 주소 /)
  await chosen.waitForFunction(prev => document.querySelector('p.host')?.textContent !== prev, { timeout: 30_000 }, first)
  assert.match(await host(), /^수신 주소 .*갱신 /, 'still Korean after a refresh')
})
