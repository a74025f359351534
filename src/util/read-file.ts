import { readFileSync } from 'node:fs'

/** A file's bytes, or undefined when it cannot be read (absent, or not a file). */
export function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}
