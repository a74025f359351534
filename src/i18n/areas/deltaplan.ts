import type { Entry } from '../entry.js'

/** Messages of the update planned from the deltas (src/sync/delta-plan.ts, docs/SCALE.md). */
export const deltaplanMessages = {
  'deltaplan.walk': {
    en: 'DEST not planned from the deltas alone ({reason}): walking all of it',
    ko: '델타만으로 DEST의 계획을 세울 수 없습니다 ({reason}). DEST 전체를 살펴봅니다',
  },
} satisfies Record<string, Entry>
