import type { Entry } from '../entry.js'

/** Signed generation records, the delta chain and BEP 46 names (docs/SCALE.md). */
export const generationMessages = {
  'generation.badKey': {
    en: '{file}: not a usable publisher key: {reason}',
    ko: '{file}: 사용할 수 없는 배포자 키입니다: {reason}',
  },
  'generation.badRecord': {
    en: '{from}: generation record refused: {reason}',
    ko: '{from}: 세대 레코드를 거부합니다: {reason}',
  },
  'generation.noRecord': {
    en: '{from}: no signed generation record, and dsync-key= requires one',
    ko: '{from}: 서명된 세대 레코드가 없는데 dsync-key=가 설정되어 있습니다',
  },
  'generation.wrongKey': {
    en: '{from}: generation record signed by {got}, expected {want}',
    ko: '{from}: 세대 레코드의 서명 키가 {got}입니다. 기대한 키: {want}',
  },
  'generation.wrongRepo': {
    en: '{from}: generation record is for repository "{got}", expected "{want}"',
    ko: '{from}: 세대 레코드가 "{got}" 저장소의 것입니다. 기대한 저장소: "{want}"',
  },
  'generation.rollback': {
    en: '{from}: generation {got} is older than generation {have} already applied to {dest} (rollback refused)',
    ko: '{from}: 세대 {got}는 {dest}에 이미 적용된 세대 {have}보다 오래되었습니다 (롤백 거부)',
  },
  'generation.mismatch': {
    en: '{from}: {what} does not match the signed generation record ({reason})',
    ko: '{from}: {what}이(가) 서명된 세대 레코드와 맞지 않습니다 ({reason})',
  },
  'generation.unverified': {
    en: 'note: origin unverified (no dsync-key= / --key); generation {seq} signed by {key}',
    ko: '참고: 출처가 검증되지 않았습니다 (dsync-key= / --key 없음); 세대 {seq}, 서명 키 {key}',
  },
  'generation.summaryDeltas': {
    en: '  generation {seq} ({key}), list updated through {deltas} delta(s); {metadata} of metadata',
    ko: '  세대 {seq} ({key}), 목록은 델타 {deltas}개로 갱신; 메타데이터 {metadata}',
  },
  'generation.summaryFull': {
    en: '  generation {seq} ({key}), full list; {metadata} of metadata',
    ko: '  세대 {seq} ({key}), 전체 목록; 메타데이터 {metadata}',
  },
  'generation.keyPinned': { en: 'signature checked against the pinned key', ko: '지정된 키로 서명 확인' },
  'generation.keyUnpinned': { en: 'origin unverified', ko: '출처 미검증' },
  'generation.offChain': {
    en: 'off the delta chain ({reason}): fetching the full generation',
    ko: '델타 체인에서 벗어났습니다 ({reason}): 전체 세대를 받습니다',
  },
  'generation.viaDeltas': {
    en: 'following {count} delta(s) to generation {to}',
    ko: '델타 {count}개를 따라 세대 {to}로 갱신합니다',
  },
  'generation.badKeyArg': {
    en: '{value}: not a publisher key (64 hex digits, as `dsync key` prints it)',
    ko: '{value}: 배포자 키가 아닙니다 (`dsync key`가 출력하는 16진수 64자리)',
  },
  'generation.dhtNotFound': {
    en: 'no DHT item for key {key} and name "{repo}" ({reason})',
    ko: 'DHT에 키 {key}, 이름 "{repo}"의 항목이 없습니다 ({reason})',
  },
} satisfies Record<string, Entry>
