import type { Entry } from '../messages.js'

/** Host and client messages about hostile or broken peers (issue 10). */
export const hardeningMessages = {
  'host.log.limited': {
    en: 'closed a connection from {peer}: {reason}',
    ko: '{peer}의 연결을 닫았습니다: {reason}',
  },
} satisfies Record<string, Entry>
