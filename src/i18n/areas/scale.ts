import type { Entry } from '../entry.js'

/** Messages of gendsync's change hint and of sharded repositories (docs/SCALE.md). */
export const scaleMessages = {
  'scale.badChangeLine': {
    en: '{file}:{line}: not a path inside the repository: {reason}',
    ko: '{file}:{line}: 저장소 안의 경로가 아닙니다: {reason}',
  },
  'scale.hintFallback': {
    en: '{repo}: change hint not used ({reason}); walking the whole tree',
    ko: '{repo}: 변경 목록을 쓰지 않습니다 ({reason}). 트리 전체를 검사합니다',
  },
} satisfies Record<string, Entry>
