/**
 * Fault: the broker dies between pushing a new job to a worker (the dispatch fast path) and
 * committing the request's accept. PostgreSQL is held by a lock so that the accept cannot
 * commit; the worker gets the job and answers it in full; then the broker is killed (SIGKILL)
 * and started again. The job comes back from Redis with no request behind it: it must be
 * discarded, not run again, and nothing may be billed for it.
 */
import t from 'tap'
import pg from 'pg'
import { Redis } from 'ioredis'
import { auditDatabase, generationEntries } from '../helpers/faults.js'
import { client, rawWorker, serve } from '../helpers/pipeline.js'
import { api, eventually, registerUser, sleep, startTestRedis } from '../helpers/harness.js'
import { createTestDatabase } from '../helpers/postgres.js'
import { startBrokerProcess } from '../helpers/processes.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

t.test('kill -9 after the push and before the commit: the job is discarded and nothing is billed', async (t) => {
  const redis = await startTestRedis(t)
  const database = await createTestDatabase(t, 'crash')
  const broker = await startBrokerProcess(t, { redisUrl: redis.url, env: { DATABASE_URL: database } })
  const wsUrl = broker.url.replace(/^http/, 'ws')
  const owner = await registerUser(broker.url, 'crash-owner')
  const requester = await registerUser(broker.url, 'crash-requester')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'crash-worker', models: [MODEL] })
  const peer = await client(wsUrl, requester.key)
  t.teardown(() => { worker.close(); peer.close() })

  // Writes to `requests` wait for this transaction; reads go on.
  const lock = new pg.Client({ connectionString: database })
  await lock.connect()
  t.teardown(() => lock.end().catch(() => {}))
  await lock.query('BEGIN')
  await lock.query('LOCK TABLE requests IN EXCLUSIVE MODE')

  peer.send({ type: 'submit', id: 'doomed', prompt: 'Once upon a time', models: [MODEL], max_length: 16 })
  const job = await worker.next('job', 10_000)
  t.pass('the worker got the job before its request was committed')
  await sleep(60)
  serve(worker, job.job, ['Hello', ' world'])
  await sleep(300)
  t.notOk(peer.frames.some((f) => f.type === 'accepted'), 'the client was not told it was accepted: the commit had not happened')
  t.notOk(worker.frames.some((f) => f.type === 'settled'), 'the job was not settled: settlement waits for the commit')

  await broker.kill()
  await lock.query('ROLLBACK')
  await broker.restart()

  // A worker on the restarted broker: the stalled job comes back, finds no request, and is discarded unoffered.
  const again = await rawWorker(wsUrl, owner.key, { name: 'crash-worker-2', models: [MODEL] })
  t.teardown(() => again.close())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const left = async () => {
    let n = 0
    for (const q of Object.keys(await admin.hgetall('hb:classes'))) {
      n += (await admin.llen(`hb:bull:${q}:active`)) + (await admin.llen(`hb:bull:${q}:wait`)) + (await admin.zcard(`hb:bull:${q}:prioritized`))
    }
    return n
  }
  await eventually(async () => (await left()) === 0, 60_000, 'the stalled job to be discarded')
  await sleep(500)
  t.notOk(again.frames.some((f) => f.type === 'job'), 'the job was not run again')

  // The worker knows the job by its own id, never the request's: look at the whole database.
  const recorded = await lock.query('SELECT count(*)::int AS n FROM requests')
  t.equal(recorded.rows[0].n, 0, 'no request was ever recorded')
  t.equal((await generationEntries(broker.database)).size, 0, 'nothing was billed for it')
  const report = await auditDatabase(broker.database)
  t.ok(report.ok, `the ledger audits clean: ${JSON.stringify(report.problems ?? [])}`)
  const me = await api(broker.url, 'GET', '/v1/users/me', { key: requester.key })
  t.equal(me.body.kudos, 0, 'the requester paid nothing')
})
