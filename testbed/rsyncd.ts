import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { after } from 'node:test'
import { pickPort } from './seeders.js'

export const hasRsync = spawnSync('rsync', ['--version'], { stdio: 'ignore' }).status === 0

export interface Rsyncd {
  address: string
  port: number
  /** rsync://ADDRESS:PORT/MODULE/ */
  url(module: string): string
  stop(): void
}

/**
 * A real rsync daemon on a loopback address, serving `modules` (name -> folder) read-only
 * from its own config file in `dir`; stopped when the test file ends.
 */
export async function startRsyncd(dir: string, address: string, modules: Record<string, string>, port = pickPort()): Promise<Rsyncd> {
  const conf = join(dir, `rsyncd-${address}.conf`)
  writeFileSync(conf, [
    'use chroot = no', 'read only = yes', 'list = yes', `pid file = ${join(dir, `rsyncd-${address}.pid`)}`,
    ...Object.entries(modules).flatMap(([name, path]) => [`[${name}]`, `path = ${path}`, `comment = ${name} for tests`]),
  ].join('\n') + '\n')
  const child: ChildProcess = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--address=${address}`, `--port=${port}`], { stdio: 'ignore' })
  after(() => child.kill('SIGTERM'))
  for (let i = 0; i < 100; i++) {
    if (await answers(address, port)) break
    await new Promise(r => setTimeout(r, 50))
  }
  return { address, port, url: m => `rsync://${address}:${port}/${m}/`, stop: () => child.kill('SIGTERM') }
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = createConnection({ host, port }, () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}
