import { randomBytes } from 'node:crypto'
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** An mtime in the past, as files rsync'ed from an upstream carry. */
const UPSTREAM_MTIME = new Date('2026-01-15T09:00:00Z')

/**
 * Writes a small APT-shaped repository: pool/ with packages of varied sizes, dists/ with
 * index files, a symlink and an empty folder. Returns the relative paths of the packages.
 */
export function writeSampleRepo(root: string, packages = 300): string[] {
  const paths: string[] = []
  const index: string[] = []
  for (let i = 0; i < packages; i++) {
    const name = `pkg${String(i).padStart(3, '0')}`
    const rel = `pool/main/${name[3]}/${name}/${name}_1.0-${i % 7}_amd64.deb`
    // Mostly tens of KB, a few of a couple of MB: the long tail of a real pool.
    const size = i % 50 === 0 ? 2_000_000 + i * 1000 : 2000 + ((i * 7919) % 90_000)
    put(root, rel, randomBytes(size))
    paths.push(rel)
    index.push(`Package: ${name}\nVersion: 1.0-${i % 7}\nFilename: ${rel}\nSize: ${size}\n`)
  }
  put(root, 'dists/stable/main/binary-amd64/Packages', index.join('\n'))
  put(root, 'dists/stable/Release', 'Origin: dsync demo\nSuite: stable\nComponents: main\n')
  put(root, 'dists/stable/InRelease', 'Origin: dsync demo\nSuite: stable\n(signed)\n')
  mkdirSync(join(root, 'project/empty'), { recursive: true })
  return paths
}

export function put(root: string, rel: string, data: string | Buffer, mtime = UPSTREAM_MTIME): void {
  const abs = join(root, rel)
  mkdirSync(dirname(abs), { recursive: true })
  writeFileSync(abs, data)
  utimesSync(abs, mtime, mtime)
}
