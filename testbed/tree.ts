import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after } from 'node:test'

/** A temporary folder removed when the test file ends. */
export function tempDir(prefix = 'dsync-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A fixed, old mtime: mirror files carry upstream mtimes, and old files are not "racy". */
export const OLD_MTIME = new Date('2024-01-02T03:04:05Z')

/** Writes files (path -> content) under root with parents, all with OLD_MTIME. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const abs = join(root, rel)
    mkdirSync(dirname(abs), { recursive: true })
    writeFileSync(abs, content)
    utimesSync(abs, OLD_MTIME, OLD_MTIME)
  }
}

/** A dsync home with webroot and one published repo per name; returns paths. */
export function makeHome(base: string, repos: Record<string, Record<string, string | Buffer>>, mainExtra = ''): { home: string; webroot: string } {
  const home = join(base, 'home')
  const webroot = join(base, 'web')
  mkdirSync(join(home, 'repos'), { recursive: true })
  mkdirSync(webroot, { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${webroot}\n${mainExtra}`)
  for (const [name, files] of Object.entries(repos)) {
    writeFileSync(join(home, 'repos', `${name}.conf`), `repo=${name}\nsave=${join(webroot, name)}\ndsync=true\n`)
    mkdirSync(join(webroot, name), { recursive: true })
    writeTree(join(webroot, name), files)
  }
  return { home, webroot }
}

/**
 * `count` tiny distinct files laid out like a Debian pool (pool/main/pNN/pkgNNNN/…), all with
 * OLD_MTIME. Long folder names (`pad` characters) make a few thousand files need more than
 * one shard (src/torrent/shards.ts).
 */
export function writePool(root: string, count: number, pad = 0): void {
  for (let i = 0; i < count; i++) {
    const dir = join(root, 'pool', 'main', `${'p'.repeat(pad)}${Math.floor(i / 500)}`, `${'k'.repeat(pad)}${Math.floor(i / 10)}`)
    if (i % 10 === 0) mkdirSync(dir, { recursive: true })
    const file = join(dir, `f${i}_1.0_amd64.deb`)
    writeFileSync(file, `file ${i}\n`)
    utimesSync(file, OLD_MTIME, OLD_MTIME)
  }
}

/**
 * Files (not folders) under DEST/.dsync/staging, as paths relative to it: staged content sits
 * in one subfolder per stage worker (src/sync/part-writer.ts, stagedPath).
 */
export function stagingFiles(dest: string): string[] {
  const dir = join(dest, '.dsync', 'staging')
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter(e => !e.isDirectory())
    .map(e => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
}
