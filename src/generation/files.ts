import { join } from 'node:path'
import { DSYNC_DIR } from '../manifest/paths.js'

/** Where a generation's record and deltas live under `<save>/.dsync/` (docs/SCALE.md). */
export interface GenerationFiles {
  record: string
  deltas: string
}

export function generationFiles(save: string): GenerationFiles {
  const dir = join(save, DSYNC_DIR)
  return { record: join(dir, 'generation'), deltas: join(dir, 'deltas') }
}

export function deltaFile(save: string, seq: number, ext: 'delta' | 'torrent'): string {
  return join(generationFiles(save).deltas, `${seq}.${ext}`)
}
