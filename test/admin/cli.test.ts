/**
 * horde-admin as an operator runs it: a real child process, on the database of a running
 * broker (the broker notices through the audit trail) and through the REST API with an
 * admin's key; then a backup taken while the broker runs, restored, and a broker started on
 * the restored file sees the same balances.
 */
import { execFile, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { api, eventually, registerUser, startBroker, startTestRedis, tempDir } from '../helpers/harness.js'
import { rawWorker } from '../helpers/pipeline.js'
import { createTestDatabase } from '../helpers/postgres.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

// Each command is a process start (tsx): on a loaded machine the walk-through takes minutes.
t.setTimeout(600_000)

interface Run { code: number; stdout: string; stderr: string }

/** `horde-admin …` in a child process, with the operator's environment. */
function admin(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/horde-admin.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
      })
  })
}

t.test('the operator walk-through: ADMIN_USERS, a moderator, an award, a pause, a suspension, a backup restored', async (t) => {
  const redis = await startTestRedis(t)
  const dataDir = tempDir()
  const { url, wsUrl, broker, config } = await startBroker(t, { redis, dataDir, env: { ADMIN_USERS: 'alice', MODERATION_POLL_SECONDS: '0.2' } })
  // horde-admin works on the broker's own database: its SQLite file, or its PostgreSQL database.
  const onDb: Record<string, string> = config.databaseUrl ? { DATABASE_URL: config.databaseUrl } : { DATA_DIR: dataDir }

  const key = await admin(['users', 'key', 'alice'], onDb)
  t.equal(key.code, 0, key.stderr)
  const aliceKey = key.stdout.split('\n')[0]
  t.match(aliceKey, /^hb_/, 'an API key for alice, made on the database')
  t.equal((await api(url, 'GET', '/v1/users/me', { key: aliceKey })).body.username, 'alice', 'the running broker accepts it')

  const bob = await registerUser(url, 'bob')
  const carol = await registerUser(url, 'carol')
  const grant = await admin(['users', 'roles', 'bob', '--grant', 'moderator', '--reason', 'runs the night shift'], onDb)
  t.equal(grant.code, 0, grant.stderr)
  t.match(grant.stdout, /bob: roles moderator \(action \d+\)/)
  t.equal((await api(url, 'GET', '/v1/admin/workers', { key: bob.key })).status, 200, 'the broker sees bob as a moderator at his next request')

  // Through the REST API with bob's key: the award is his, in the trail.
  const overRest = { HORDE_ADMIN_URL: url, HORDE_ADMIN_KEY: bob.key }
  const award = await admin(['users', 'award', 'carol', '25', '--memo', 'found a bug'], overRest)
  t.equal(award.code, 0, award.stderr)
  t.match(award.stdout, /awarded 25 kudos to carol/)
  t.equal((await api(url, 'GET', '/v1/users/me', { key: carol.key })).body.kudos, 25)

  const worker = await rawWorker(wsUrl, carol.key, { name: 'carol-1' })
  t.teardown(() => worker.close())
  const pause = await admin(['workers', 'pause', 'carol-1', '--reason', 'slow answers'], onDb)
  t.equal(pause.code, 0, pause.stderr)
  const told = await worker.next('moderation', 15_000)
  t.same([told.paused, told.reason], [true, 'slow answers'], 'the running broker told the worker, from the trail')
  const list = await admin(['workers', 'list', '--json'], onDb)
  t.match(JSON.parse(list.stdout).workers, [{ name: 'carol-1', owner: 'carol', paused: true, paused_reason: 'slow answers' }])

  const suspend = await admin(['users', 'suspend', 'carol', '--reason', 'sock puppets'], onDb)
  t.equal(suspend.code, 0, suspend.stderr)
  t.equal((await worker.closed).code, 4403, "the broker closed carol's worker")
  const submit = await api(url, 'POST', '/v1/generate', { key: carol.key, body: { prompt: 'p' } })
  t.equal(submit.body.error.code, 'user_suspended')
  await eventually(() => broker.core.moderation.isSuspended(carol.id), 10_000, 'the broker to hold carol as suspended')

  const refused = await admin(['users', 'suspend', 'alice', '--reason', 'x'], overRest)
  t.equal(refused.code, 1, 'a refusal exits 1')
  t.match(refused.stderr, /refused \(forbidden\)/, 'and prints its code')
  const usage = await admin(['users', 'suspend', 'carol'], onDb)
  t.equal(usage.code, 2, 'no --reason: a usage error')
  t.match(usage.stderr, /--reason is required/)

  const trail = await admin(['actions', '--json'], overRest)
  const operator = `cli:${os.userInfo().username}`
  t.same(JSON.parse(trail.stdout).actions.map((a: any) => [a.action, a.actor]),
    [['user_suspend', operator], ['worker_pause', operator], ['award', 'bob'], ['role_grant', operator], ['role_grant', 'ADMIN_USERS']],
    'every step is in the trail, newest first, with who did it')
  const audit = await admin(['audit'], onDb)
  t.equal(audit.code, 0, audit.stdout)
  t.match(audit.stdout, /OK: balances/)

  // A backup while the broker runs, then a broker started on the restored copy.
  const backupDir = tempDir()
  const file = path.join(backupDir, 'horde-backup.sqlite')
  const backup = await admin(['backup', file], onDb)
  t.equal(backup.code, 0, backup.stderr)
  t.equal((await admin(['backup', file], onDb)).code, 2, 'an existing file is never overwritten')
  const restored = tempDir()
  let restoredEnv: Record<string, string> = {}
  if (config.databaseUrl) {
    // PostgreSQL: pg_dump's custom format, restored with pg_restore into a new database, as README says.
    t.match(backup.stdout, /custom format; restore with pg_restore/)
    const target = await createTestDatabase(t, 'restored')
    const restore = spawnSync('pg_restore', ['--clean', '--if-exists', '--no-owner', '-d', target, file], { encoding: 'utf8' })
    t.equal(restore.status, 0, `pg_restore: ${restore.stderr}`)
    restoredEnv = { DATABASE_URL: target }
  } else {
    t.match(backup.stdout, /ledger audit of the copy: OK/)
    fs.copyFileSync(file, path.join(restored, 'horde.sqlite'))
  }
  const again = await startBroker(t, { redis: await startTestRedis(t), dataDir: restored, env: restoredEnv })
  t.equal((await api(again.url, 'GET', '/v1/users/carol')).body.kudos, 25, 'the restored broker sees the same balance')
  t.same((await again.broker.services.accounts.byName('bob'))!.roles, ['moderator'], 'and the same roles')
  t.equal((await api(again.url, 'POST', '/v1/generate', { key: carol.key, body: { prompt: 'p' } })).body.error.code, 'user_suspended', 'and the same suspension')
})

t.test('models show and models check', async (t) => {
  const dir = tempDir()
  const good = path.join(dir, 'models.json')
  fs.writeFileSync(good, JSON.stringify({ models: { 'demo/tiny': 1, 'new/Model-30B': 30 } }))
  const bad = path.join(dir, 'bad.json')
  fs.writeFileSync(bad, JSON.stringify({ models: { 'x/y': -3 } }))
  const ok = await admin(['models', 'check', good], {})
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /OK: .*2 models/)
  t.match(ok.stdout, /\+ new\/Model-30B \(30 B\)/, 'what the new file adds to the registry in use')
  const failed = await admin(['models', 'check', bad], {})
  t.equal(failed.code, 1)
  t.match(failed.stdout, /FAILED: .*size of x\/y must be a positive number/)
  const dataDir = tempDir()
  fs.writeFileSync(path.join(dataDir, 'horde.sqlite'), '')
  const show = await admin(['models', 'show', '--file', good], { DATA_DIR: dataDir })
  t.equal(show.code, 0, show.stderr)
  t.match(show.stdout, /new\/Model-30B\s+30/)
  const missing = await admin(['users', 'show', 'x'], { DATA_DIR: tempDir() })
  t.equal(missing.code, 2, 'no database file: a usage error, and no new file made')
  t.match(missing.stderr, /no database file at/)
})
