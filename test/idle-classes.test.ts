import t from 'tap'
import { Redis } from 'ioredis'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { rawWorker, serve } from './helpers/pipeline.js'

t.test('empty classes are closed and forgotten, and come back when used', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, config, url, wsUrl } = await startBroker(t, { redis, env: { MAX_ACTIVE_ANON_PER_IP: '100', SUBMITS_PER_SECOND: '1000', MAX_UNSERVED_CLASSES_PER_USER: '100' } })
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const clients = async () => (await admin.client('LIST') as string).trim().split('\n').length
  const before = await clients()
  const submitted: Array<{ id: string; capability: string }> = []
  for (let i = 0; i < 20; i++) submitted.push((await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: [`made-up/model-${i}`] } })).body)
  const jobQueue = broker.jobQueue
  t.equal(jobQueue.openQueues, 20, 'twenty classes, twenty open queues')
  t.ok((await clients()) <= before + 2, 'an open class holds no connection of its own')
  for (const { id, capability } of submitted) t.equal((await api(url, 'DELETE', `/v1/generate/${id}`, { headers: { 'x-request-capability': capability } })).status, 200)

  t.equal(await jobQueue.closeIdle(performance.now() + 60_000), 20, 'once empty and idle, all are closed')
  t.equal(jobQueue.openQueues, 0)
  await new Promise((r) => setTimeout(r, 200))
  t.ok((await clients()) <= before + 2, 'and no connection was left behind')
  t.equal(await admin.hlen(`${config.redisPrefix}:classes`), 0, 'and forgotten in the registry')

  // A class comes back when a request for it comes, and is served.
  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w', models: ['made-up/model-3'] })
  t.teardown(() => worker.close())
  const again = await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: ['made-up/model-3'] } })
  const job = await worker.next('job')
  t.equal(job.forRequest, again.body.id)
  serve(worker, job.job, ['ok'])
  await worker.next('settled')
})
