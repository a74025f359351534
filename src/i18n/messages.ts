/**
 * Every user-facing sentence, in English and Korean. Commands print through `t()` so that
 * a new message cannot be added in one language only: the type below requires both.
 */
import { areaMessages } from './areas.js'
import type { Entry } from './entry.js'

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
    en: 'unknown repository "{repo}" (configured in {dir}: {known})',
    ko: '알 수 없는 저장소 "{repo}" ({dir}에 설정된 저장소: {known})',
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
  'init.noWebroot': {
    en: 'warning: webroot {webroot} does not exist yet; create it before running gendsync or service',
    ko: '경고: webroot {webroot}가 아직 없습니다. gendsync나 service 전에 만드세요',
  },
  'scan.vanished': {
    en: 'warning: {path} disappeared during the scan; left out of this generation',
    ko: '경고: 검색 중 {path}이(가) 사라져 이번 세대에서 제외합니다',
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

  // host (DTP service)
  'host.started': {
    en: 'DTP service started (pid {pid}); log: {log}',
    ko: 'DTP 서비스를 시작했습니다 (pid {pid}). 로그: {log}',
  },
  'host.alreadyRunning': {
    en: 'the DTP service is already running (pid {pid})',
    ko: 'DTP 서비스가 이미 실행 중입니다 (pid {pid})',
  },
  'host.notRunning': {
    en: 'the DTP service of {home} is not running',
    ko: '{home}의 DTP 서비스가 실행 중이 아닙니다',
  },
  'host.stopped': { en: 'DTP service stopped (pid {pid})', ko: 'DTP 서비스를 중지했습니다 (pid {pid})' },
  'host.reloaded': { en: 'reloaded: {message}', ko: '다시 읽었습니다: {message}' },
  'host.reloadFailed': {
    en: 'reload failed, the service keeps its previous settings: {message}',
    ko: '다시 읽기 실패, 서비스는 이전 설정을 유지합니다: {message}',
  },
  'host.startFailed': {
    en: 'the DTP service did not start; see {log}: {tail}',
    ko: 'DTP 서비스가 시작되지 않았습니다. {log}을(를) 확인하세요: {tail}',
  },
  'host.listenFailed': { en: 'cannot listen on the DTP port: {reason}', ko: 'DTP 포트에서 대기할 수 없습니다: {reason}' },
  'host.noControl': {
    en: 'the DTP service does not answer on {path}: {reason}',
    ko: 'DTP 서비스가 {path}에서 응답하지 않습니다: {reason}',
  },
  'host.noSystemd': {
    en: 'systemd is not running on this machine; use "dsync startup --print" for the unit or run "dsync service --foreground" under your init',
    ko: '이 시스템에서 systemd가 실행 중이 아닙니다. "dsync startup --print"로 유닛을 보거나 "dsync service --foreground"를 사용하세요',
  },
  'host.systemctlFailed': { en: '{command} failed: {reason}', ko: '{command} 실패: {reason}' },
  'host.unitInstalled': {
    en: 'installed and enabled {file}; start it with: systemctl start dsync-dtp.service',
    ko: '{file}을(를) 설치하고 활성화했습니다. 시작: systemctl start dsync-dtp.service',
  },
  'host.log.listening': { en: 'listening on {addresses}, {repos} repositories', ko: '{addresses}에서 대기 중, 저장소 {repos}개' },
  'host.log.repoLoaded': {
    en: 'repo {repo} loaded: infohash {infoHash}, {files} files, {bytes} bytes, {pieces} pieces in {seconds}s ({filesHashed} files hashed)',
    ko: '저장소 {repo} 적재: infohash {infoHash}, 파일 {files}개, {bytes}바이트, 조각 {pieces}개, {seconds}초 (해시한 파일 {filesHashed}개)',
  },
  'host.log.repoRefused': { en: 'repo {repo} not served: {reason}', ko: '저장소 {repo}를 제공하지 않습니다: {reason}' },
  'host.log.repoDropped': { en: 'repo {repo} no longer served', ko: '저장소 {repo} 제공을 중단했습니다' },
  'host.log.peer': { en: 'peer {peer} connected to {repo} ({peers} peers)', ko: '피어 {peer}가 {repo}에 연결했습니다 (피어 {peers}개)' },
  'host.log.peerGone': { en: 'peer {peer} left {repo} after {uploaded} bytes', ko: '피어 {peer}가 {repo}에서 나갔습니다 ({uploaded}바이트 전송)' },
  'host.log.refused': { en: 'refused {peer} (not in firewall.conf)', ko: '{peer} 거부 (firewall.conf에 없음)' },
  'host.log.stale': {
    en: 'repo {repo}: {path} {reason}; its pieces are refused until the next gendsync',
    ko: '저장소 {repo}: {path} {reason}. 다음 gendsync까지 해당 조각을 제공하지 않습니다',
  },
  'host.log.reloaded': { en: 'reloaded: {repos} repositories served, {refused} not', ko: '다시 읽음: 저장소 {repos}개 제공, {refused}개 제외' },
  'host.log.reloadFailed': { en: 'reload failed, previous settings kept: {reason}', ko: '다시 읽기 실패, 이전 설정 유지: {reason}' },
  'host.log.stopping': { en: 'stopping', ko: '중지 중' },
  'host.log.error': { en: 'error: {reason}', ko: '오류: {reason}' },
  'host.log.firstBlock': {
    en: 'repo {repo}: first block served to {peer} ({filesOpened} files opened so far)',
    ko: '저장소 {repo}: {peer}에게 첫 블록 전송 (지금까지 연 파일 {filesOpened}개)',
  },
  'host.log.announce': { en: 'repo {repo}: announce to {tracker}: {result}', ko: '저장소 {repo}: {tracker}에 알림: {result}' },
  'host.log.listenChanged': {
    en: 'port= or listen= changed; restart the service to apply it',
    ko: 'port= 또는 listen=이 바뀌었습니다. 적용하려면 서비스를 다시 시작하세요',
  },

  // sync (client)
  'sync.badSource': {
    en: 'not a source dsync understands: "{source}" (expected a magnet link, a .torrent path or URL, or dtp://HOST[:PORT]/REPO)',
    ko: 'dsync가 이해할 수 없는 원본입니다: "{source}" (magnet 링크, .torrent 경로나 URL, dtp://HOST[:PORT]/REPO 중 하나여야 합니다)',
  },
  'sync.fetchFailed': {
    en: 'cannot fetch {url}: {reason}',
    ko: '{url}을(를) 가져올 수 없습니다: {reason}',
  },
  'sync.tooLarge': {
    en: '{what} from {from} is larger than the cap of {cap} bytes; refusing it',
    ko: '{from}의 {what}이(가) 상한 {cap}바이트보다 커서 거부합니다',
  },
  'sync.badTorrent': {
    en: 'malformed torrent from {from}: {reason}',
    ko: '{from}의 torrent가 잘못되었습니다: {reason}',
  },
  'sync.notDsyncTorrent': {
    en: 'torrent from {from} is not a dsync repository: {reason}',
    ko: '{from}의 torrent는 dsync 저장소가 아닙니다: {reason}',
  },
  'sync.manifestMismatch': {
    en: 'data.dsync from {from} does not match its torrent: {reason}',
    ko: '{from}의 data.dsync가 torrent와 일치하지 않습니다: {reason}',
  },
  'sync.noPeers': {
    en: 'no host could be reached for {infohash} (tried: {tried})',
    ko: '{infohash}에 대해 연결할 수 있는 호스트가 없습니다 (시도: {tried})',
  },
  'sync.stalled': {
    en: 'transfer stalled: {remaining} pieces missing and no host offers them (peers tried: {tried})',
    ko: '전송이 멈췄습니다: {remaining}개 조각이 남았지만 제공하는 호스트가 없습니다 (시도한 피어: {tried})',
  },
  'sync.noMetadata': {
    en: 'could not get the torrent of {infohash} from any peer (tried: {tried})',
    ko: '어느 피어에서도 {infohash}의 torrent를 받지 못했습니다 (시도: {tried})',
  },
  'sync.peerDropped': {
    en: 'dropped peer {peer}: {reason}',
    ko: '피어 {peer} 연결 끊음: {reason}',
  },
  'sync.motd': {
    en: 'message from {peer}:\n{motd}',
    ko: '{peer}의 메시지:\n{motd}',
  },
  'sync.massDelete': {
    en: '{dest}: refusing to delete {count} of {total} entries ({percent}% > delete-limit {limit}%); pass --force to allow it',
    ko: '{dest}: 전체 {total}개 중 {count}개({percent}%) 삭제는 delete-limit {limit}%를 넘어 거부합니다. 허용하려면 --force를 쓰세요',
  },
  'sync.done': {
    en: '{dest}: {added} added, {changed} changed, {removed} removed; received {bytes} from {hosts} host(s) in {seconds}s',
    ko: '{dest}: 추가 {added}, 변경 {changed}, 삭제 {removed}; 호스트 {hosts}곳에서 {bytes} 받음, {seconds}초',
  },
  'sync.upToDate': {
    en: '{dest}: already at generation {infohash}; nothing to do ({seconds}s)',
    ko: '{dest}: 이미 {infohash} 세대입니다. 할 일이 없습니다 ({seconds}초)',
  },
  'sync.noSource': {
    en: '{file}: repository "{repo}" has no dsync-url= to sync from',
    ko: '{file}: 저장소 "{repo}"에 동기화할 dsync-url=이 없습니다',
  },
  'sync.retry': {
    en: '{repo}: attempt {attempt} of {attempts} failed: {reason}; retrying in {seconds}s',
    ko: '{repo}: {attempts}번 중 {attempt}번째 시도 실패: {reason}; {seconds}초 후 다시 시도합니다',
  },
  'sync.hostileManifest': {
    en: '{dest}: refusing data.dsync: {reason}',
    ko: '{dest}: data.dsync를 거부합니다: {reason}',
  },

  // tracker
  'tracker.listening': {
    en: 'tracker listening on {address}:{port} ({transports}); {mode}',
    ko: '트래커가 {address}:{port}에서 대기 중입니다 ({transports}); {mode}',
  },
  'tracker.mode.public': { en: 'public', ko: '공개' },
  'tracker.mode.private': {
    en: 'private: {torrents} allowed torrents, {keys} passkeys',
    ko: '비공개: 허용된 토렌트 {torrents}개, 패스키 {keys}개',
  },
  'tracker.reloaded': {
    en: 'reloaded: {torrents} allowed torrents, {keys} passkeys; {dropped} swarms dropped',
    ko: '다시 읽었습니다: 허용된 토렌트 {torrents}개, 패스키 {keys}개; 스웜 {dropped}개 제거',
  },
  'tracker.reloadFailed': {
    en: 'reload failed, the previous lists stay in force: {reason}',
    ko: '다시 읽기 실패, 이전 목록을 유지합니다: {reason}',
  },
  'tracker.refused': {
    en: 'refused {transport} request from {address}: {reason}',
    ko: '{address}의 {transport} 요청을 거부했습니다: {reason}',
  },
  'tracker.stopped': { en: 'tracker stopped', ko: '트래커를 멈췄습니다' },
  'tracker.portInUse': {
    en: '{address}:{port} is already in use ({transport}); is another tracker running?',
    ko: '{address}:{port}는 이미 사용 중입니다 ({transport}). 다른 트래커가 실행 중인가요?',
  },
  'tracker.cannotListen': {
    en: 'cannot listen on {address}:{port}: {reason}',
    ko: '{address}:{port}에서 대기할 수 없습니다: {reason}',
  },
  'tracker.badListen': {
    en: '--listen {address} is not an IP address',
    ko: '--listen {address}는 IP 주소가 아닙니다',
  },
  'tracker.badOption': { en: '{option}: {reason}', ko: '{option}: {reason}' },
  'tracker.noTransport': {
    en: 'every transport is turned off (--no-http --no-udp --no-ws); nothing to serve',
    ko: '모든 전송 방식이 꺼져 있습니다 (--no-http --no-udp --no-ws). 제공할 것이 없습니다',
  },
  'tracker.privateNeedsList': {
    en: 'private mode needs --allow-file FILE or --from-home to say which torrents are tracked',
    ko: '비공개 모드에는 추적할 토렌트를 정하는 --allow-file FILE 또는 --from-home이 필요합니다',
  },
  'tracker.allowLine': {
    en: '{file}:{line}: not an infohash (40 hex or 32 base32 characters): {text}',
    ko: '{file}:{line}: infohash가 아닙니다 (16진수 40자 또는 base32 32자): {text}',
  },
  'tracker.keyLine': {
    en: '{file}:{line}: a passkey is 8 to 128 characters of A-Z a-z 0-9 _ -',
    ko: '{file}:{line}: 패스키는 A-Z a-z 0-9 _ - 문자 8~128자여야 합니다',
  },
  'tracker.homeTorrentMissing': {
    en: 'warning: {repo}: no readable torrent at {file}; run "dsync gendsync {repo}", then reload (SIGHUP)',
    ko: '경고: {repo}: {file}에 읽을 수 있는 토렌트가 없습니다. "dsync gendsync {repo}" 실행 후 다시 읽기(SIGHUP)를 하세요',
  },

  // cli
  'cli.badNumber': {
    en: 'option {flag}: expected a whole number from {min} to {max}, got "{value}"',
    ko: '옵션 {flag}: {min}에서 {max} 사이의 정수여야 합니다 (받은 값: "{value}")',
  },
  'cli.unfinished': {
    en: 'internal error: the command stopped before it finished (nothing left to wait for); treat it as failed',
    ko: '내부 오류: 명령이 끝나기 전에 멈췄습니다 (기다릴 작업이 남지 않음). 실패로 처리하세요',
  },
  'cli.internal': {
    en: 'internal error: {message} (run with DSYNC_DEBUG=1 for details)',
    ko: '내부 오류: {message} (자세한 내용은 DSYNC_DEBUG=1로 실행하세요)',
  },
} satisfies Record<string, Entry>

const all = { ...catalogue, ...areaMessages }
export type MessageId = keyof typeof all
export const messages: Record<MessageId, Entry> = all
