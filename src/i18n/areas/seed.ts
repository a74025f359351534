import type { Entry } from '../entry.js'

/** `pull --seed`: serving the new mirror (issue 15). */
export const seedMessages = {
  'seed.badAllow': {
    en: 'option --seed-allow: {reason}',
    ko: '옵션 --seed-allow: {reason}',
  },
} satisfies Record<string, Entry>
