import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** `count` tiny distinct files in folders of 1000, written as fast as Node can. */
export function writeManyFiles(root: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const dir = join(root, 'pool', `d${Math.floor(i / 1000)}`)
    if (i % 1000 === 0) mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`)
  }
}
