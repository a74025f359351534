import type { Entry } from '../entry.js'

/** Messages of the client's delta route on a sharded repository (docs/SCALE.md). */
export const shardsyncMessages = {
  'shardsync.fetchShards': {
    en: '{count} shard torrent(s) not rebuilt locally ({reason}): fetching them from the host',
    ko: '샤드 토렌트 {count}개를 로컬에서 다시 만들지 못했습니다 ({reason}). 호스트에서 받습니다',
  },
  'shardsync.otherInfohash': {
    en: 'rebuilt with another infohash than the record names',
    ko: '다시 만든 토렌트의 infohash가 레코드와 다릅니다',
  },
  'shardsync.fetchTorrent': {
    en: 'repository torrent not rebuilt locally: fetched from the host',
    ko: '저장소 토렌트를 로컬에서 다시 만들지 못해 호스트에서 받았습니다',
  },
} satisfies Record<string, Entry>
