import t from 'tap'
import { Redis } from 'ioredis'
import { api, startBroker, startTestRedis } from './helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

t.test('request classes cost no Redis connection: thirty classes, no more clients', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis, env: { MAX_ACTIVE_ANON_PER_IP: '100', SUBMITS_PER_SECOND: '1000', MAX_UNSERVED_CLASSES_PER_USER: '100' } })
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const clients = async () => (await admin.client('LIST') as string).trim().split('\n').length
  const before = await clients()
  // Thirty distinct classes of one registry model: length tiers, with and without trusted workers.
  const lengths = [16, 32, 48, 64, 80, 96, 100, 120, 128, 150, 160, 192, 200, 250, 256]
  for (const maxLength of lengths) {
    for (const trusted of [false, true]) {
      const answer = await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: [MODEL], max_length: maxLength, trusted_workers: trusted } })
      t.equal(answer.status, 202, `accepted (max_length ${maxLength}, trusted ${trusted})`)
    }
  }
  t.equal(broker.jobQueue.openQueues, 30, 'thirty classes open')
  await new Promise((r) => setTimeout(r, 200))
  const after = await clients()
  t.ok(after - before <= 2, `Redis clients grew by ${after - before}, not with the classes`)
})
