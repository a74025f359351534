import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { HUGE_PAGES_TUNABLE } from '../util/huge-pages.js'

export const UNIT_NAME = 'dsync-dtp.service'
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`

/** The unit DSYNC's -startup installs: the service in the foreground, reload by SIGHUP. */
export function unitText(home: string, cliEntry: string, user = process.env.SUDO_USER || process.env.USER || 'root'): string {
  const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\])/g, '\\$1')}"`)
  return `[Unit]
Description=dsync DTP host (seeds mirror repositories over BitTorrent)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${user}
# glibc malloc in huge pages: each start reads every generation's metadata into memory (docs/HOST.md).
Environment=GLIBC_TUNABLES=${HUGE_PAGES_TUNABLE}=1
ExecStart=${q(process.execPath)} ${q(cliEntry)} --home ${q(home)} service --foreground
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`
}

/** True when systemd is the running init (its runtime folder exists). */
export function hasSystemd(): boolean {
  return existsSync('/run/systemd/system')
}

export function installUnit(home: string, cliEntry: string): void {
  if (!hasSystemd()) throw new DsyncError(ExitCode.failed, 'host.noSystemd', {})
  try {
    writeFileAtomic(UNIT_PATH, unitText(home, cliEntry))
  } catch (err) {
    throw fsError(err, UNIT_PATH, 'write')
  }
  for (const args of [['daemon-reload'], ['enable', UNIT_NAME]]) {
    try {
      execFileSync('systemctl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim()
      throw new DsyncError(ExitCode.failed, 'host.systemctlFailed', { command: `systemctl ${args.join(' ')}`, reason: stderr || (err as Error).message })
    }
  }
}
