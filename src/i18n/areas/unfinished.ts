import type { Entry } from '../entry.js'

/** Messages of a commit an earlier run did not finish (src/sync/unfinished-commit.ts). */
export const unfinishedMessages = {
  'unfinished.torrents': {
    en: 'DEST holds this generation but not its torrent {torrent} (an earlier run stopped before writing it): finishing the commit',
    ko: 'DEST에 이 세대는 있지만 토렌트 {torrent}가 없습니다 (이전 실행이 쓰기 전에 중단됨). 커밋을 마칩니다',
  },
} satisfies Record<string, Entry>
