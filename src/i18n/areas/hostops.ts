import type { Entry } from '../messages.js'

/** Host operations (issue 14): upload limit, discovery, metrics, status page. */
export const hostopsMessages = {
  'host.log.uploadLimit': {
    en: 'upload limit: {host} Mbit/s for the host (0 = none); repositories: {repos}',
    ko: '업로드 제한: 호스트 전체 {host} Mbit/s (0 = 없음), 저장소별: {repos}',
  },
} satisfies Record<string, Entry>
