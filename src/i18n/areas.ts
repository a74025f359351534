/**
 * Message catalogues of separate areas (runner, generations, host operations, ...), one file
 * each under ./areas/, merged here so that `t()` knows every id. Each area file exports an
 * object that `satisfies Record<string, Entry>`; keys are prefixed with the area's name.
 */
import { generationMessages } from './areas/generation.js'
import { scaleMessages } from './areas/scale.js'
import { hardeningMessages } from './areas/hardening.js'
import { hostopsMessages } from './areas/hostops.js'
import { runnerMessages } from './areas/runner.js'
import { seedMessages } from './areas/seed.js'
import { shardsyncMessages } from './areas/shardsync.js'
import { deltaplanMessages } from './areas/deltaplan.js'
import { unfinishedMessages } from './areas/unfinished.js'

export const areaMessages = {
  ...runnerMessages,
  ...generationMessages,
  ...hardeningMessages,
  ...seedMessages,
  ...hostopsMessages,
  ...scaleMessages,
  ...shardsyncMessages,
  ...deltaplanMessages,
  ...unfinishedMessages,
}
