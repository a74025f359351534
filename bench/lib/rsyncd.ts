import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { timeChild } from './measure.js'

/**
 * An rsync daemon serving `root` as module `mod` on address:port (read-only, .dsync/
 * excluded, as the same user: as root rsync would switch to nobody). Resolves once it answers.
 */
export async function startRsyncd(base: string, root: string, address: string, port: number): Promise<ChildProcess> {
  const conf = join(base, 'rsyncd.conf')
  writeFileSync(conf, [
    'use chroot = no', `uid = ${process.getuid!()}`, `gid = ${process.getgid!()}`, `log file = ${join(base, 'rsyncd.log')}`,
    '[mod]', `path = ${root}`, 'read only = yes', 'exclude = /.dsync/', '',
  ].join('\n'))
  const child = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--address=${address}`, `--port=${port}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', d => (err += d))
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) throw new Error(`rsync daemon exited: ${err}`)
    const r = await timeChild('rsync', [`rsync://${address}:${port}/`])
    if (r.code === 0) return child
    await new Promise(res => setTimeout(res, 100))
  }
  child.kill()
  throw new Error(`rsync daemon did not answer: ${err}`)
}
