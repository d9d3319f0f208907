import t from 'tap'
import { Redis } from 'ioredis'
import { auditLedger } from '../src/ledger/audit.js'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { rawWorker, serve } from './helpers/pipeline.js'

t.test('Redis flushed: every accepted, unfinished request is queued again, none twice', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis, env: { MAX_ACTIVE_PER_USER: '100', SUBMITS_PER_SECOND: '1000' } })
  const user = await registerUser(url, 'user')
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push((await api(url, 'POST', '/v1/generate', { key: user.key, body: { prompt: `p${i}`, models: ['m/x'] } })).body.id)
  const admin = new Redis(redis.url)
  await admin.flushall()
  await admin.quit()
  t.equal(await broker.core.recovery.reconcile(), 10, 'all ten queued again')
  t.equal(await broker.core.recovery.reconcile(), 0, 'a second pass finds nothing missing')

  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w', models: ['m/x'], threads: 4 })
  t.teardown(() => worker.close())
  const served: string[] = []
  for (let i = 0; i < 10; i++) {
    const job = await worker.next('job')
    served.push(job.forRequest)
    serve(worker, job.job, ['ok'])
  }
  t.same([...served].sort(), [...ids].sort(), 'each served exactly once')
  for (let i = 0; i < 10; i++) await worker.next('settled')
  await new Promise((r) => setTimeout(r, 200))
  t.equal(worker.frames.filter((f) => f.type === 'job').length, 10, 'no job twice')
  const report = await auditLedger(broker.services.store.audit)
  t.equal(report.ok, true, report.problems.join('\n'))
})

t.test('a broker restart finds the requests its database accepted', async (t) => {
  const redis = await startTestRedis(t)
  const first = await startBroker(t, { redis })
  const user = await registerUser(first.url, 'user')
  const id = (await api(first.url, 'POST', '/v1/generate', { key: user.key, body: { prompt: 'kept', models: ['m/x'] } })).body.id
  await first.close()
  const admin = new Redis(redis.url)
  await admin.flushall() // as if Redis had lost everything while the broker was down
  await admin.quit()
  const second = await startBroker(t, { redis, dataDir: first.dataDir })
  const owner = await registerUser(second.url, 'owner')
  const worker = await rawWorker(second.wsUrl, owner.key, { name: 'w', models: ['m/x'] })
  t.teardown(() => worker.close())
  const job = await worker.next('job')
  t.equal(job.forRequest, id)
  t.equal(job.prompt, 'kept')
})
