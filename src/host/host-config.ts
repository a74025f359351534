import { loadFirewallConf, loadListConf, type Firewall } from '../config/dtp-config.js'
import { loadHome } from '../config/load.js'
import type { MainConfig } from '../config/main-config.js'
import type { RepoConfig } from '../config/repo-config.js'
import { readMotd } from './motd.js'

/**
 * Everything a DTP host reads from its home, as values. `dsync service` loads it from the
 * five files of a DSYNC home (loadHostConfig); `pull --seed` and the demo build it in memory.
 */
export interface HostConfig {
  main: MainConfig
  repos: RepoConfig[]
  /** dtp/list.conf: the folders offered, relative to webroot, no leading slash. */
  listed: string[]
  firewall: Firewall
  motd: string
  /** One line each for the log (unknown keys, an unreadable motd file). */
  warnings: string[]
}

export function loadHostConfig(homeFlag: string | undefined, rsyncdConf?: string): HostConfig {
  const home = loadHome(homeFlag)
  const firewall = loadFirewallConf(home.paths.firewallConf)
  const motd = readMotd(home.paths.motdConf, rsyncdConf)
  const listed = loadListConf(home.paths.listConf)
  const warnings = [...home.warnings]
  if (motd.problem) warnings.push(`motd: ${motd.problem}`)
  return { main: home.main, repos: home.repos, listed, firewall, motd: motd.text, warnings }
}
