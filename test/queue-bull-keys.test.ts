import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { createBullKeys } from '../src/queue/bull-keys.js'
import { decodeScore } from '../src/queue/score.js'
import { startTestRedis } from './helpers/harness.js'

const server = await startTestRedis(t)

/** A connection and a BullMQ queue on a prefix of their own, closed at the end of the test. */
async function realQueue(t: Test) {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  const prefix = `t-${randomUUID().slice(0, 8)}:bull`
  const name = `gen-${randomUUID().slice(0, 8)}`
  const queue = new Queue(name, { connection: redis, prefix })
  t.teardown(async () => {
    await queue.close()
    await redis.quit()
  })
  await queue.waitUntilReady()
  return { redis, prefix, name, queue, bull: createBullKeys(prefix) }
}

t.test('the key names are the ones a real BullMQ queue uses', async (t) => {
  const { name, queue, bull, prefix } = await realQueue(t)
  t.equal(bull.prefix, prefix)
  t.equal(bull.wait(name), queue.keys.wait)
  t.equal(bull.prioritized(name), queue.keys.prioritized)
  t.equal(bull.active(name), queue.keys.active)
  t.equal(bull.job(name, 'abc'), queue.toKey('abc'))
})

t.test('the keys hold what BullMQ writes: plain jobs, prioritized jobs by score, job hashes', async (t) => {
  const { redis, name, queue, bull } = await realQueue(t)
  await queue.add('generate', { n: 0 }, { jobId: 'plain' })
  await queue.add('generate', { n: 1 }, { jobId: 'first', priority: 7 })
  await queue.add('generate', { n: 2 }, { jobId: 'second', priority: 7 })
  await queue.add('generate', { n: 3 }, { jobId: 'better', priority: 3 })
  t.same(await redis.lrange(bull.wait(name), '0', '-1'), ['plain'], 'priority 0 goes to the plain list')
  const flat = await redis.zrange(bull.prioritized(name), '0', '-1', 'WITHSCORES')
  const decoded = []
  for (let i = 0; i < flat.length; i += 2) decoded.push({ id: flat[i], ...decodeScore(flat[i + 1]) })
  t.same(decoded, [
    { id: 'better', priority: 3, counter: 3 },
    { id: 'first', priority: 7, counter: 1 },
    { id: 'second', priority: 7, counter: 2 },
  ], 'scores decode to the priority and the insertion counter')
  t.equal(await redis.exists(bull.job(name, 'first')), 1, 'a job hash under its id')
  t.equal(await redis.exists(bull.job(name, 'nope')), 0)
})
