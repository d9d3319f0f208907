import { spawnSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'
import { openDb } from '../src/db/open.js'
import { api, balanceOf, grant, registerUser, startBroker, startTestRedis, tempDir } from './helpers/harness.js'

t.test('a bad config value stops start-up with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'], [{ PORT: '70000' }, 'PORT'], [{ REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'], [{ HEARTBEAT_SECONDS: '-1' }, 'HEARTBEAT_SECONDS'], [{ MAX_FRAME_BYTES: '1.5' }, 'MAX_FRAME_BYTES'],
  ]
  for (const [env, variable] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', variable, message: new RegExp(variable) })
  }
  t.equal(loadConfig({}).port, 7001, 'defaults work on a laptop')
  t.ok(Object.isFrozen(loadConfig({}).limits))

  const run = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('src/main.ts')], { env: { ...process.env, PORT: 'nope', DATA_DIR: tempDir() }, encoding: 'utf8', timeout: 30_000 })
  t.equal(run.status, 2, 'the process exits with status 2')
  t.match(run.stderr, /Invalid PORT/)
})

t.test('migrations apply to an empty directory and are a no-op the second time', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'db.sqlite')
  const first = openDb(file)
  const tables = (first.sqlite.prepare("select name from sqlite_master where type = 'table' order by name").all() as Array<{ name: string }>).map((r) => r.name)
  t.ok(tables.includes('ledger_entries') && tables.includes('postings') && tables.includes('balances'))
  const applied = (first.sqlite.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number }).n
  t.ok(applied >= 1)
  t.equal(first.sqlite.pragma('journal_mode', { simple: true }), 'wal')
  first.close()
  const second = openDb(file)
  t.equal((second.sqlite.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number }).n, applied, 'nothing applied twice')
  t.equal((second.sqlite.prepare('select count(*) as n from users where id = 0').get() as { n: number }).n, 1, 'one Anonymous account')
  second.close()
})

t.test('a restart on the same data directory keeps accounts, keys and balances', async (t) => {
  const redis = await startTestRedis(t)
  const first = await startBroker(t, { redis })
  const alice = await registerUser(first.url, 'alice')
  const bob = await registerUser(first.url, 'bob')
  await grant(first.broker, alice.id, 10)
  const sent = await api(first.url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 4 }, headers: { 'idempotency-key': 'once' } })
  t.equal(sent.status, 201)
  await first.close()

  const second = await startBroker(t, { redis, dataDir: first.dataDir })
  const me = await api(second.url, 'GET', '/v1/users/me', { key: alice.key })
  t.equal(me.status, 200, 'the key still works')
  t.equal(me.body.kudos, 6)
  t.equal(await balanceOf(second.broker, bob.id), 4)
  const replay = await api(second.url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 4 }, headers: { 'idempotency-key': 'once' } })
  t.equal(replay.status, 200, 'the idempotency key survives the restart')
  t.equal(await balanceOf(second.broker, bob.id), 4)
  const health = await api(second.url, 'GET', '/health')
  t.same(health.body, { status: 'ok', db: 'ok', redis: 'ok' })
  const metrics = await fetch(second.url + '/metrics').then((r) => r.text())
  t.match(metrics, /horde_http_requests_total/)
})
