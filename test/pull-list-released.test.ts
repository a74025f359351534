import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { DEFAULT_INDEX_FILES } from '../src/config/repo-config.js'
import type { ManifestEntry } from '../src/manifest/entry.js'
import { newFolder, prepareFolders } from '../src/sync/new-folders.js'
import { pull } from '../src/sync/pull.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { sharedTree, startSharedHost } from '../testbed/shared-hosts.js'
import { tempDir } from '../testbed/tree.js'

// What a bootstrap holds through its transfer (docs/SCALE.md, "Bootstrap memory ... (h11m17)").
// A real `dsync service` on 127.0.31.2, the client on 127.0.31.9.

function files(): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {}
  for (let i = 0; i < 300; i++) out[`pool/main/p${i % 30}/pkg${i}/pkg${i}_1.0_amd64.deb`] = Buffer.alloc(2000 + i * 37, i + 1)
  out['dists/stable/InRelease'] = 'Suite: stable\n'
  return out
}

/** V8's collector, exposed the documented way (the flag, then a new context that has the function). */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

test('a bootstrap holds its parsed list only to the plan: the list is collectable once the files come, and DEST converges', { timeout: 120_000 }, async () => {
  const tree = await sharedTree(files())
  const host = await startSharedHost(tree, '127.0.31.2')
  const dest = join(tempDir(), 'mirror')
  const gc = exposedGc()
  let list: WeakRef<ManifestEntry[]> | undefined
  let heldInTransfer: boolean | undefined
  await pull({
    sources: [tree.url(host)], dest, indexFiles: DEFAULT_INDEX_FILES, localAddress: '127.0.31.9',
    onList: m => { list = new WeakRef(m.entries) },
    onProgress: p => {
      if (p.phase !== 'files' || heldInTransfer !== undefined) return
      gc()
      heldInTransfer = list!.deref() !== undefined
    },
  })
  assert.ok(list, 'the list was never handed to onList')
  assert.equal(heldInTransfer, false, 'the parsed list (its array of entries) is still reachable during the transfer')
  await assertSameTree(join(tree.webroot, tree.repo), dest)
})

test('a bootstrap keeps no object per file through its transfer: the plan holds its files as rows, and DEST converges', { timeout: 120_000 }, async () => {
  const tree = await sharedTree(files())
  const host = await startSharedHost(tree, '127.0.31.2')
  const dest = join(tempDir(), 'mirror')
  const gc = exposedGc()
  // Every file entry the parser made: the plan, the fetch list and the transfer must not keep one.
  const made: WeakRef<ManifestEntry>[] = []
  let alive: string[] | undefined
  await pull({
    sources: [tree.url(host)], dest, indexFiles: DEFAULT_INDEX_FILES, localAddress: '127.0.31.9',
    onList: m => { for (const e of m.entries) if (e.type === 'f') made.push(new WeakRef(e)) },
    onProgress: p => {
      if (p.phase !== 'files' || alive !== undefined) return
      gc()
      alive = made.map(w => w.deref()?.path).filter((p): p is string => p !== undefined)
    },
  })
  assert.equal(made.length, 301, 'the list handed to onList has every file')
  assert.deepEqual(alive, [], 'file entries made by the parser are still reachable during the transfer')
  await assertSameTree(join(tree.webroot, tree.repo), dest)
})

test('new folders are made from one buffer of their paths, any name; newFolder finds each in an ordered list and in one out of order', async () => {
  const names = ['a', 'a/b c', 'a/b c/\u00fcber', 'a/line\nbreak', 'a/tab\there', 'b', 'b/\u{1F600}', 'b/\uE000', 'z']
  const dirs = (paths: string[]) => paths.map(path => ({ type: 'd', path, mode: 0o755, size: 0, mtime: 0 }) as ManifestEntry)
  const staging = join(tempDir(), 'staging')
  mkdirSync(staging)
  const root = await prepareFolders(staging, dirs(names))
  assert.equal(root, join(staging, 'folders'))
  for (const n of names) assert.ok(existsSync(join(root!, n)), `folder ${JSON.stringify(n)} was not made`)
  // In data.dsync's order (UTF-8 bytes) an astral character comes after U+E000; in JavaScript's, before.
  for (const order of [names, [...names].reverse(), ['b', 'b/\uE000', 'b/\u{1F600}']]) {
    const made = newFolder(dirs(order))
    for (const n of order) assert.ok(made(n), `${JSON.stringify(n)} not found in ${JSON.stringify(order)}`)
    for (const n of ['', 'a/b', 'b/\u{1F601}', 'y', 'zz']) assert.ok(!made(n), `${JSON.stringify(n)} found in ${JSON.stringify(order)}`)
  }
})
