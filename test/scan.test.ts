import assert from 'node:assert/strict'
import { chmodSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { scanTree, scanTreeParallel } from '../src/manifest/scan.js'
import { tempDir } from '../testbed/tree.js'

test('the walk on worker threads finds exactly what the one-thread walk finds (types, modes, times, links, odd names, warnings)', async () => {
  const root = tempDir()
  // Past the entries the main thread lists itself, so most folders go to the workers.
  for (let i = 0; i < 7000; i++) {
    const dir = join(root, 'pool', `p${i % 37}`, `pkg${i % 401}`)
    if (i < 401 * 37) mkdirSync(dir, { recursive: true })
    const file = join(dir, `f${i}.deb`)
    writeFileSync(file, 'x'.repeat(i % 13))
    utimesSync(file, new Date(1_000_000_000_000 + i * 1001), new Date(1_000_000_000_000 + i * 997))
  }
  mkdirSync(join(root, 'odd', 'deep', 'er'), { recursive: true })
  writeFileSync(join(root, 'odd', 'tab\there é 🙂'), 'odd')
  chmodSync(join(root, 'odd', 'tab\there é 🙂'), 0o600)
  symlinkSync('../pool/p0', join(root, 'odd', 'deep', 'link'))
  symlinkSync('/nowhere/at/all', join(root, 'odd', 'deep', 'er', 'dangling'))
  linkSync(join(root, 'pool', 'p1', 'pkg1', 'f1.deb'), join(root, 'odd', 'hard.deb'))
  mkdirSync(join(root, '.dsync'))
  writeFileSync(join(root, '.dsync', 'data.dsync'), 'left out')
  const warnings: string[][] = [[], []]
  const one = scanTree(root, { excludeTop: ['.dsync'], onWarning: m => warnings[0].push(m) })
  const many = await scanTreeParallel(root, { excludeTop: ['.dsync'], threads: 2, onWarning: m => warnings[1].push(m) })
  assert.ok(one.length > 7000)
  assert.deepEqual(many, one)
  assert.deepEqual(warnings[1], warnings[0])
  assert.ok(one.some(e => e.type === 'h') && one.some(e => e.type === 'l' && e.target === '/nowhere/at/all'))
})

test('the walk on worker threads stops at an unreadable folder, naming it', async t => {
  if (process.getuid?.() === 0) return t.skip('root reads every folder')
  const root = tempDir()
  for (let i = 0; i < 6000; i++) {
    mkdirSync(join(root, `d${i % 600}`), { recursive: true })
    writeFileSync(join(root, `d${i % 600}`, `f${i}`), '')
  }
  chmodSync(join(root, 'd599'), 0)
  await assert.rejects(scanTreeParallel(root, { threads: 2 }), /d599/)
})
