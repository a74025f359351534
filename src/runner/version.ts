import { readFileSync } from 'node:fs'

let cached: string | undefined

/** This package's version (package.json sits three folders above dist/src/runner/). */
export function dsyncVersion(): string {
  if (cached) return cached
  cached = process.env.npm_package_version ?? '0.1.0'
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const v = (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string })
      if (v.name === 'dsync' && v.version) return (cached = v.version)
    } catch {
      // not there: try the next layout
    }
  }
  return cached
}
