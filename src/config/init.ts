import { existsSync, mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { keyFiles, loadOrCreateKey } from '../generation/keys.js'
import { writeFilesIfMissing } from '../util/atomic-write.js'
import { homePaths } from './home.js'
import { SETTINGS } from './defaults.js'

const xyncConf = (webroot: string) => `# dsync main configuration (DSYNC's xync.conf). key=value, '#' starts a comment.

# The folder that holds the repositories.
webroot=${webroot}

# Trackers written into every torrent, comma separated (http, https, udp, ws, wss).
# None by default: hosts still find each other through dtp:// addresses and --peer.
#tracker=udp://tracker.example.org:6969/announce

# The DTP service port (tcp) and the addresses it listens on (default: all).
#port=${SETTINGS.port.default}
#listen=192.0.2.10, 2001:db8::10

# Announce to the BitTorrent DHT as well.
#dht=false

# The runner (bare \`dsync\`, cron: \`dsync -nolog\`): repositories synced at once (1-100).
#syncps=${SETTINGS.syncps.default}
# Local addresses to download from, comma separated: a mirror with two uplinks uses both.
#ipadd=192.168.0.2,192.168.1.2
# Intranet mode: a repo's intraadd=ADDR means rsync://ADDR/REPO.
#intra=false
# Logs in ~/dxync/logs/: one folder per repository, files named by time (logs-20250514-0603.log).
#logdir=false
#logtime=false
# Each sync's result POSTed as JSON that Slack and Discord accept.
#webhookurl=https://hooks.slack.com/services/xxxx/yyyy/zzzz
# DIR/dsync-status/REPO holds 0 (failed), 1 (ok) or 2 (running), for a status web page.
#status=/mirrors
`

const exampleRepo = `# A repository. Copy to NAME.conf and edit; files not ending in .conf are ignored.
repo=example
# Where it lives; a relative path is taken from webroot.
save=/mirrors/example
# Publish it (gendsync writes .dsync/data.dsync, the .torrent and the magnet link).
dsync=false
# A downstream mirror names its upstream instead: dtp://HOST/REPO, a magnet link or a
# .torrent path/URL, several separated by commas.
#dsync-url=dtp://mirror.example.org/example
# Without a swarm source it syncs by rsync (two stages: index files and deletions last).
#rsync-url=rsync://rsync.example.org/example
# Or paste an ftpsync.conf below ftpsync=true (RSYNC_HOST=, RSYNC_PATH=, MIRRORNAME=, ...).
#ftpsync=false
# Hours (24 h clock) at which the runner syncs it; without it, every run.
#timeset=00,06,12,18
# DSYNC status file: 0 failed, 1 ok, 2 running.
#status=/var/run/dsync/example.status
#retries=${SETTINGS.retries.default}
#connections=${SETTINGS.connections.default}
# Refuse a sync that would delete more than this percentage of the tree.
#delete-limit=${SETTINGS.deleteLimit.default}
# The upstream publisher's key (\`dsync key\` on the publisher prints it): generations not
# signed by it, or older than the last one applied, are refused.
#dsync-key=<64 hex digits>
# Publishing: how many deltas (one per generation) to keep for mirrors that are behind.
#keep-deltas=32
`

export const DEFAULT_LIST_CONF = `# Folders this host offers, one per line, relative to webroot:
#/ubuntu
#/rocky
`
export const DEFAULT_FIREWALL_CONF = `# Who may connect to the DTP service. Unset: anyone.
# When set, any other address gets no response at all.
# Addresses and CIDR ranges, IPv4 and IPv6, comma separated; allow= may repeat.
#allow=192.0.2.10, 198.51.100.0/24, 2001:db8::/32
`
export const DEFAULT_MOTD_CONF = `# The welcome message shown to DTP users ("경로" means path).
# Unset: the "motd file" of /etc/rsyncd.conf, if any.
#경로=/etc/dsync/welcome.motd
`

/** Writes a commented template home; never overwrites a file that exists. Returns what it created. */
export function initHome(home: string, webroot: string): string[] {
  const p = homePaths(home)
  if (existsSync(p.mainConfig)) throw new DsyncError(ExitCode.config, 'init.exists', { file: p.mainConfig })
  try {
    for (const dir of [home, p.reposDir, p.dtpDir]) mkdirSync(dir, { recursive: true })
  } catch (err) {
    throw fsError(err, home, 'write')
  }
  const created = writeFilesIfMissing([
    [p.mainConfig, xyncConf(resolve(webroot))],
    [`${p.reposDir}/example.conf.sample`, exampleRepo],
    ...dtpDefaults(home),
  ])
  // The publisher key that signs this home's generation records (docs/SCALE.md).
  if (!existsSync(keyFiles(home).privateFile)) {
    loadOrCreateKey(home)
    created.push(keyFiles(home).privateFile)
  }
  return created
}

/** The three dtp/ files with their defaults (no restriction, nothing listed, default motd). */
export function dtpDefaults(home: string): [string, string][] {
  const p = homePaths(home)
  return [[p.listConf, DEFAULT_LIST_CONF], [p.firewallConf, DEFAULT_FIREWALL_CONF], [p.motdConf, DEFAULT_MOTD_CONF]]
}
