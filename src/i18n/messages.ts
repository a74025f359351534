/**
 * Every user-facing sentence, in English and Korean. Commands print through `t()` so that
 * a new message cannot be added in one language only: the type below requires both.
 */
type Entry = { en: string; ko: string }

const catalogue = {
  // filesystem
  'fs.failed': { en: 'cannot {action} {path}: {reason}', ko: '{path}: {action} 실패: {reason}' },
  'errno.ENOENT': { en: 'no such file or directory', ko: '파일이나 디렉터리가 없습니다' },
  'errno.EACCES': { en: 'permission denied', ko: '권한이 없습니다' },
  'errno.ENOSPC': { en: 'no space left on device', ko: '디스크 공간이 부족합니다' },
  'errno.ENOTDIR': { en: 'not a directory', ko: '디렉터리가 아닙니다' },
  'errno.EISDIR': { en: 'is a directory', ko: '디렉터리입니다' },
  'errno.EMFILE': { en: 'too many open files', ko: '열린 파일이 너무 많습니다' },
  'errno.EIO': { en: 'input/output error', ko: '입출력 오류' },

  // configuration
  'config.malformed': {
    en: '{file}:{line}: malformed line (expected key=value): {text}',
    ko: '{file}:{line}: 잘못된 줄입니다 (key=value 형식이어야 합니다): {text}',
  },
  'config.unknownKey': {
    en: '{file}:{line}: warning: unknown key "{key}" ignored',
    ko: '{file}:{line}: 경고: 알 수 없는 키 "{key}"를 무시합니다',
  },
  'config.duplicateKey': {
    en: '{file}:{line}: "{key}" is already set on line {first}',
    ko: '{file}:{line}: "{key}"는 {first}번째 줄에서 이미 설정되었습니다',
  },
  'config.badValue': {
    en: '{file}:{line}: invalid value for {key}: {reason}',
    ko: '{file}:{line}: {key} 값이 잘못되었습니다: {reason}',
  },
  'config.missingKey': {
    en: '{file}: required key "{key}" is missing',
    ko: '{file}: 필수 키 "{key}"가 없습니다',
  },
  'config.noHome': {
    en: 'no dsync home at {home} (no xync.conf); run "dsync init --webroot DIR" first',
    ko: '{home}에 dsync 홈이 없습니다 (xync.conf 없음). 먼저 "dsync init --webroot DIR"을 실행하세요',
  },
  'config.webrootMissing': {
    en: '{file}:{line}: webroot {path} does not exist or is not a directory',
    ko: '{file}:{line}: webroot {path}가 없거나 디렉터리가 아닙니다',
  },
  'config.saveMissing': {
    en: '{file}:{line}: repository folder {path} does not exist or is not a directory',
    ko: '{file}:{line}: 저장소 폴더 {path}가 없거나 디렉터리가 아닙니다',
  },
  'config.saveOutsideWebroot': {
    en: '{file}:{line}: save={path} is outside webroot {webroot}',
    ko: '{file}:{line}: save={path}가 webroot {webroot} 밖에 있습니다',
  },
  'config.duplicateRepo': {
    en: '{file}:{line}: repository "{repo}" is already defined in {other}',
    ko: '{file}:{line}: 저장소 "{repo}"는 이미 {other}에 정의되어 있습니다',
  },
  'config.unknownRepo': {
    en: 'unknown repository "{repo}" (configured: {known})',
    ko: '알 수 없는 저장소 "{repo}" (설정된 저장소: {known})',
  },
  'config.notPublished': {
    en: '{file}: repository "{repo}" has dsync=false; set dsync=true to publish it',
    ko: '{file}: 저장소 "{repo}"는 dsync=false입니다. 게시하려면 dsync=true로 설정하세요',
  },
  'config.noRepos': {
    en: 'no published repositories (dsync=true) in {dir}',
    ko: '{dir}에 게시된 저장소(dsync=true)가 없습니다',
  },
  'init.exists': {
    en: '{file} already exists; not overwriting it',
    ko: '{file}이(가) 이미 있습니다. 덮어쓰지 않습니다',
  },
  'init.done': {
    en: 'created dsync home {home} (webroot={webroot}); add repositories under {repos}',
    ko: 'dsync 홈 {home}을(를) 만들었습니다 (webroot={webroot}). {repos}에 저장소를 추가하세요',
  },

  // manifest and torrent
  'manifest.corrupt': {
    en: '{file}:{line}: corrupt data.dsync: {reason}',
    ko: '{file}:{line}: 손상된 data.dsync: {reason}',
  },
  'manifest.missing': {
    en: 'no data.dsync at {file}; run "dsync gendsync" on the source first',
    ko: '{file}에 data.dsync가 없습니다. 먼저 원본에서 "dsync gendsync"를 실행하세요',
  },
  'manifest.notGenerated': {
    en: 'repository "{repo}" has no {file} yet; run "dsync gendsync {repo}" first',
    ko: '저장소 "{repo}"에 아직 {file}이(가) 없습니다. 먼저 "dsync gendsync {repo}"를 실행하세요',
  },
  'scan.changedWhileHashing': {
    en: '{path} changed while it was being read; run gendsync again once the tree is quiet',
    ko: '{path}이(가) 읽는 도중 바뀌었습니다. 트리가 안정된 뒤 gendsync를 다시 실행하세요',
  },
  'scan.badName': {
    en: 'warning: skipping {path}: file name is not valid UTF-8',
    ko: '경고: {path} 건너뜀: 파일 이름이 올바른 UTF-8이 아닙니다',
  },
  'scan.special': {
    en: 'warning: skipping {path}: not a file, directory or symlink',
    ko: '경고: {path} 건너뜀: 파일, 디렉터리, 심볼릭 링크가 아닙니다',
  },
  'scan.notDirectory': {
    en: '{path} is not a directory',
    ko: '{path}은(는) 디렉터리가 아닙니다',
  },
  'lock.held': {
    en: '{path} is locked by process {pid}; another dsync is working on this repository',
    ko: '{path}은(는) 프로세스 {pid}가 잠갔습니다. 다른 dsync가 이 저장소를 처리 중입니다',
  },

  // gendsync
  'gendsync.phase.scan': { en: 'scanning', ko: '검색 중' },
  'gendsync.phase.hash': { en: 'hashing', ko: '해시 계산 중' },
  'gendsync.done': {
    en: '{repo}: {entries} entries, {files} files, {bytes}; hashed {hashed} files ({hashedBytes}) in {seconds}s; infohash {infohash}',
    ko: '{repo}: 항목 {entries}개, 파일 {files}개, {bytes}; 파일 {hashed}개({hashedBytes}) 해시 {seconds}초; infohash {infohash}',
  },
  'gendsync.unchanged': {
    en: '{repo}: unchanged since the last generation (infohash {infohash}); checked in {seconds}s',
    ko: '{repo}: 마지막 생성 이후 변경 없음 (infohash {infohash}), {seconds}초',
  },
  'gendsync.pieceLengthChanged': {
    en: '{repo}: piece length changes from {from} to {to}; every file is hashed again',
    ko: '{repo}: 조각 크기가 {from}에서 {to}(으)로 바뀌어 모든 파일을 다시 해시합니다',
  },

  // verify
  'verify.ok': {
    en: '{dir}: OK, {entries} entries match data.dsync ({bytes} hashed in {seconds}s)',
    ko: '{dir}: 정상, 항목 {entries}개가 data.dsync와 일치합니다 ({bytes}, {seconds}초)',
  },
  'verify.mismatch': {
    en: '{dir}: {count} mismatches against data.dsync',
    ko: '{dir}: data.dsync와 {count}개 불일치',
  },

  // cli
  'cli.internal': {
    en: 'internal error: {message} (run with DSYNC_DEBUG=1 for details)',
    ko: '내부 오류: {message} (자세한 내용은 DSYNC_DEBUG=1로 실행하세요)',
  },
} satisfies Record<string, Entry>

export type MessageId = keyof typeof catalogue
export const messages: Record<MessageId, Entry> = catalogue
