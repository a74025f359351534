import type { MainRunnerConfig } from '../config/main-config.js'
import type { RepoConfig } from '../config/repo-config.js'
import { rsyncSourceOf } from './first-hop.js'

export interface Upstream {
  /** 'dtp': the swarm client (dsync-url=); 'rsync': the first hop from an official mirror. */
  kind: 'dtp' | 'rsync'
  source: string
}

/** How the repository gets its data: a swarm source wins; then rsync-url=, intraadd=, ftpsync=. */
export function upstreamKind(repo: RepoConfig, main: Pick<MainRunnerConfig, 'intra'>): Upstream | undefined {
  if (repo.sources.length > 0) return { kind: 'dtp', source: repo.sources.join(', ') }
  const rsync = rsyncSourceOf(repo, main)
  return rsync ? { kind: 'rsync', source: rsync } : undefined
}
