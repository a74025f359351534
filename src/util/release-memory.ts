import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Below this many bytes dropped, V8's own collections are soon enough. */
export const RELEASE_MIN_BYTES = 32 << 20

let gc: (() => void) | undefined

/**
 * Buffers the program has just dropped (data.dsync's bytes and the shard torrents once they
 * are on disk: ~300 MB at 1M files) are only given back when V8 next runs a full collection;
 * the plan and the first transfer buffers were built beside them, and that was the client's
 * peak at 1M files (docs/SCALE.md, "Bootstrap memory: a collection where ~300 MB were dropped").
 * One full collection at that point; V8 frees the backing stores on a background thread.
 * `gc` is exposed the documented way (the flag, then a new context that has the function).
 */
export function collectNow(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  }
  gc()
}
