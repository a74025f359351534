import type { Entry } from '../entry.js'

/** Host operations (issue 14): upload limit, discovery, metrics, status page. */
export const hostopsMessages = {
  'host.log.uploadLimit': {
    en: 'upload limit: {host} Mbit/s for the host (0 = none); repositories: {repos}',
    ko: '업로드 제한: 호스트 전체 {host} Mbit/s (0 = 없음), 저장소별: {repos}',
  },
  // The status page (src/host/status-page.ts), in the reader's Accept-Language.
  'page.title': { en: 'DTP host', ko: 'DTP 호스트' },
  'page.repository': { en: 'repository', ko: '저장소' },
  'page.generation': { en: 'generation', ko: '세대' },
  'page.age': { en: 'age', ko: '경과' },
  'page.files': { en: 'files', ko: '파일' },
  'page.size': { en: 'size', ko: '크기' },
  'page.peers': { en: 'peers', ko: '피어' },
  'page.upload': { en: 'upload', ko: '업로드' },
  'page.uploaded': { en: 'uploaded', ko: '보낸 양' },
  'page.noRepo': { en: 'no repository served', ko: '제공 중인 저장소가 없습니다' },
  'page.notServed': { en: 'Not served', ko: '제공하지 않는 항목' },
  'page.uploadLimit': { en: '; upload limit {mbit} Mbit/s', ko: '; 업로드 제한 {mbit} Mbit/s' },
  'page.host': {
    en: 'Listening on {listen}{limit}; up since {since}; updated {updated}.',
    ko: '수신 주소 {listen}{limit}; 시작 {since}; 갱신 {updated}.',
  },
  'page.refresh': { en: 'refreshes every {seconds} s', ko: '{seconds}초마다 갱신' },
  'page.age.d': { en: '{d} d {h} h', ko: '{d}일 {h}시간' },
  'page.age.h': { en: '{h} h {m} min', ko: '{h}시간 {m}분' },
  'page.age.m': { en: '{m} min', ko: '{m}분' },
  'page.age.s': { en: '{s} s', ko: '{s}초' },
} satisfies Record<string, Entry>
