import type { Entry } from '../entry.js'

/** Host and client messages about hostile or broken peers (issue 10). */
export const hardeningMessages = {
  'host.log.limited': {
    en: 'closed a connection from {peer}: {reason}',
    ko: '{peer}의 연결을 닫았습니다: {reason}',
  },
  'hardening.noSpace': {
    en: 'not enough free space for {dest}: {need} to fetch, {free} free on its filesystem',
    ko: '{dest}에 공간이 부족합니다: 받을 크기 {need}, 파일 시스템 여유 공간 {free}',
  },
} satisfies Record<string, Entry>
