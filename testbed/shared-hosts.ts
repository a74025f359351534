import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { runCli } from './cli.js'
import { HOST_PORT } from './host.js'
import { tempDir, writeTree } from './tree.js'

/** One `dsync service` home serving the shared tree from `address`. */
export interface SharedHost {
  home: string
  address: string
  peer: string
  cli(...args: string[]): ReturnType<typeof runCli>
  log(): string
  /** Rewrites xync.conf's extra lines (listen/port/webroot stay) and reloads. */
  reconfigure(extra: string): Promise<void>
}

export interface SharedTree {
  webroot: string
  repo: string
  infoHash: string
  /** The generation's .torrent (its announce list is what hosts and clients use). */
  torrent: string
  /** `dtp://ADDRESS/REPO` of a host. */
  url(h: SharedHost): string
}

/**
 * One published tree on disk, gendsync'ed once, served by several hosts whose homes all name
 * the same webroot: large repositories (rate tests) are written once, not once per host.
 */
export async function sharedTree(files: Record<string, string | Buffer>, repo = 'rocky', mainExtra = ''): Promise<SharedTree> {
  const base = tempDir('dsync-shared-')
  const webroot = join(base, 'web')
  writeTree(join(webroot, repo), files)
  const home = join(base, 'gen-home')
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${webroot}\n${mainExtra}`)
  writeFileSync(join(home, 'repos', `${repo}.conf`), `repo=${repo}\nsave=${join(webroot, repo)}\ndsync=true\n`)
  const g = await runCli(['--home', home, '--json', 'gendsync'])
  assert.equal(g.code, 0, g.stderr)
  const infoHash = (JSON.parse(g.stdout.trim().split('\n').pop()!) as { infoHash: string }).infoHash
  return {
    webroot, repo, infoHash, torrent: join(webroot, repo, '.dsync', `${repo}.torrent`),
    url: h => `dtp://${h.address}:${HOST_PORT}/${repo}`,
  }
}

/**
 * Starts a host for the shared tree on `address` (port HOST_PORT), with `extra` xync.conf
 * lines, optional repos/REPO.conf lines and dtp/ files; stopped after the test file.
 */
export async function startSharedHost(tree: SharedTree, address: string, extra = '', repoExtra = '', dtpFiles: Record<string, string> = {}): Promise<SharedHost> {
  // Not tempDir(): the service must be stopped before its home is removed (one after hook, in order).
  const base = mkdtempSync(join(tmpdir(), 'dsync-shost-'))
  const home = join(base, 'home')
  mkdirSync(join(home, 'repos'), { recursive: true })
  const writeMain = (more: string) =>
    writeFileSync(join(home, 'xync.conf'), `webroot=${tree.webroot}\nlisten=${address}\nport=${HOST_PORT}\n${more}`)
  writeMain(extra)
  writeFileSync(join(home, 'repos', `${tree.repo}.conf`),
    `repo=${tree.repo}\nsave=${join(tree.webroot, tree.repo)}\ndsync=true\n${repoExtra}`)
  const cli = (...args: string[]) => runCli(['--home', home, ...args])
  after(async () => {
    await cli('stop-service')
    rmSync(base, { recursive: true, force: true })
  })
  mkdirSync(join(home, 'dtp'), { recursive: true })
  writeFileSync(join(home, 'dtp', 'list.conf'), `/${tree.repo}\n`)
  // firewall.conf, motd.conf...: `service` keeps dtp/ files that exist.
  for (const [name, text] of Object.entries(dtpFiles)) writeFileSync(join(home, 'dtp', name), text)
  const r = await cli('service')
  assert.equal(r.code, 0, r.stderr)
  const host: SharedHost = {
    home, address, peer: `${address}:${HOST_PORT}`, cli,
    log: () => readFileSync(join(home, 'log', 'dtp.log'), 'utf8'),
    async reconfigure(more: string) {
      writeMain(more)
      const rr = await cli('reload')
      assert.equal(rr.code, 0, rr.stderr)
    },
  }
  return host
}
