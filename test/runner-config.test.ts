import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadMainConfig } from '../src/config/main-config.js'
import { loadRepoConfig } from '../src/config/repo-config.js'
import { DsyncError, ExitCode } from '../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'dsync-runner-config-'))
let n = 0
function conf(text: string): string {
  const file = join(dir, `${n++}.conf`)
  writeFileSync(file, text)
  return file
}

test('repo timeset=: hours parse; 오후01, 12:30 and 25 are config errors naming file and line', () => {
  const ok = loadRepoConfig(conf('repo=a\nsave=/m/a\ntimeset=18,00,06, 12\n'), '/m')
  assert.deepEqual(ok.timeset, [0, 6, 12, 18])
  assert.equal(loadRepoConfig(conf('repo=a\nsave=/m/a\n'), '/m').timeset, undefined)
  for (const bad of ['오후01', '12:30', '25', '', '6pm']) {
    const file = conf(`repo=a\nsave=/m/a\n# schedule\ntimeset=${bad}\n`)
    assert.throws(() => loadRepoConfig(file, '/m'), (err: unknown) => {
      assert.ok(err instanceof DsyncError, String(err))
      assert.equal(err.exitCode, ExitCode.config)
      assert.ok(err.message.includes(`${file}:4:`), err.message)
      assert.ok(!err.message.includes('\n'))
      return true
    }, bad)
  }
})

test('repo rsync first hop keys and pasted ftpsync.conf variables load without warnings', () => {
  const r = loadRepoConfig(conf([
    'repo=kali', 'save=/m/kali', 'ftpsync=true', 'MIRRORNAME="mirror.example.org"', 'TO="/m/kali/"',
    "RSYNC_HOST='127.0.0.5'", 'RSYNC_PATH=kali', 'intraadd=10.1.1.50', 'rsync-url=rsync://127.0.0.5/kali',
  ].join('\n')), '/m')
  assert.equal(r.ftpsync, true)
  assert.equal(r.ftpsyncVars.get('MIRRORNAME'), 'mirror.example.org')
  assert.equal(r.ftpsyncVars.get('RSYNC_HOST'), '127.0.0.5')
  assert.equal(r.rsyncUrl, 'rsync://127.0.0.5/kali/')
  assert.equal(r.intraAdd, '10.1.1.50')
  assert.deepEqual(r.warnings, [])
  assert.throws(() => loadRepoConfig(conf('repo=a\nsave=/m/a\nrsync-url=http://x/y\n'), '/m'), /:3:/)
})

test('xync.conf runner keys: defaults, values, and syncps out of 1..100 refused', () => {
  const d = loadMainConfig(conf('webroot=/m\n'))
  assert.deepEqual(d.runner, { syncps: 1, ipadd: [], intra: false, logdir: false, logtime: false, webhookUrl: undefined, statusDir: undefined, passErrorTemp: false })
  const c = loadMainConfig(conf('webroot=/m\nsyncps=20\nipadd=127.0.0.2,127.0.0.3\nintra=true\nlogdir=true\nlogtime=true\nwebhookurl=http://127.0.0.1:9/x\nstatus=st\npass-error-temp=false\nrokfoss-sync=false\n'))
  assert.equal(c.runner.syncps, 20)
  assert.deepEqual(c.runner.ipadd, ['127.0.0.2', '127.0.0.3'])
  assert.equal(c.runner.statusDir, join(dir, 'st'))
  assert.deepEqual(c.warnings, [])
  for (const bad of ['syncps=0', 'syncps=101', 'ipadd=eth0', 'webhookurl=ftp://x/']) {
    assert.throws(() => loadMainConfig(conf(`webroot=/m\n${bad}\n`)), /:2:/, bad)
  }
})
