import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/** The DSYNC home layout: `~/dxync` unless `--home` or `DXYNC_HOME` says otherwise. */
export interface HomePaths {
  home: string
  mainConfig: string
  reposDir: string
  dtpDir: string
  listConf: string
  firewallConf: string
  motdConf: string
}

export function resolveHome(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env.DXYNC_HOME || join(homedir(), 'dxync'))
}

export function homePaths(home: string): HomePaths {
  const dtpDir = join(home, 'dtp')
  return {
    home,
    mainConfig: join(home, 'xync.conf'),
    reposDir: join(home, 'repos'),
    dtpDir,
    listConf: join(dtpDir, 'list.conf'),
    firewallConf: join(dtpDir, 'firewall.conf'),
    motdConf: join(dtpDir, 'motd.conf'),
  }
}
