import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { classOf, type RequestClass } from '../src/queue/classes.js'
import { JobQueue, type JobData } from '../src/queue/job-queue.js'
import { createKeys } from '../src/queue/keys.js'
import { decodeMember, encodeMember } from '../src/queue/waiting-index.js'
import { startTestRedis } from './helpers/harness.js'

const server = await startTestRedis(t)

/** A JobQueue on a prefix of its own (locks not renewed: `start()` is not called). */
async function openQueue(t: Test, lockMs = 30_000) {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  const keys = createKeys(`t-${randomUUID().slice(0, 8)}`)
  const jobQueue = new JobQueue({ redis, keys, lockMs, maxAttempts: 3 })
  t.teardown(async () => {
    await jobQueue.close()
    await redis.quit()
  })
  return { redis, keys, jobQueue }
}

let clock = 1_700_000_000_000
function job(cls: RequestClass, userId: number): JobData {
  const request = randomUUID()
  return { request, userId, prompt: 'p', models: cls.models, max_length: 80, max_context_length: 1024, params: {}, submittedAt: clock++, classKey: cls.key }
}

const small = classOf(['m'], 80, 1024)
const other = classOf(['n'], 80, 1024)

t.test('members encode queue and request and decode back', async (t) => {
  const member = encodeMember(small.queue, 'f3c1e0a2-1111-4222-8333-944445555666')
  t.equal(member, `${small.queue}|f3c1e0a2-1111-4222-8333-944445555666`)
  t.same(decodeMember(member), { queue: small.queue, request: 'f3c1e0a2-1111-4222-8333-944445555666' })
})

t.test('a job is indexed when added and forgotten when claimed', async (t) => {
  const { redis, keys, jobQueue } = await openQueue(t)
  const a = job(small, 7)
  const b = job(other, 7)
  t.equal(await jobQueue.addWithPosition(small, a, 100), 0)
  t.equal(await redis.get(keys.bucket(7)), '100', 'a submission records the bucket')
  await jobQueue.add(other, b, 100)
  t.same(await jobQueue.waiting.ofUsers([7, 8]), [[
    { queue: small.queue, request: a.request, submittedAt: a.submittedAt },
    { queue: other.queue, request: b.request, submittedAt: b.submittedAt },
  ], []], 'per user, oldest first, decoded')
  const again = await jobQueue.waiting.ofUser(7)
  t.equal(again.bucket, 100)
  t.equal(again.entries.length, 2)

  const claimed = await jobQueue.claim(small.queue)
  t.equal(claimed?.job.id, a.request)
  await redis.ping() // the index write is not awaited by claim; it is ordered before this
  t.same((await jobQueue.waiting.ofUsers([7]))[0].map((e) => e.request), [b.request], 'claimed: no longer waiting')

  t.ok(await jobQueue.restart(claimed!, 'worker left'))
  t.same((await jobQueue.waiting.ofUsers([7]))[0].map((e) => e.request), [a.request, b.request], 'restarted: waiting again, at its submit time')
  await jobQueue.complete((await jobQueue.claim(small.queue))!)
})

t.test('removing a waiting job removes its entry, with or without the owner given', async (t) => {
  const { redis, jobQueue } = await openQueue(t)
  const a = job(small, 3)
  const b = job(small, 3)
  await jobQueue.add(small, a, 50)
  await jobQueue.add(small, b, 50)
  t.ok(await jobQueue.removeWaiting(small.queue, a.request, 3))
  t.ok(await jobQueue.removeWaiting(small.queue, b.request))
  await redis.ping()
  t.same(await jobQueue.waiting.ofUsers([3]), [[]])
  const c = job(small, 3)
  await jobQueue.add(small, c, 50)
  const claimed = await jobQueue.claim(small.queue)
  t.notOk(await jobQueue.removeWaiting(small.queue, c.request), 'a running job is not waiting')
  await jobQueue.complete(claimed!)
})

t.test('the preferred read stops at its limit and skips nobody', async (t) => {
  const { jobQueue } = await openQueue(t)
  const added: string[] = []
  for (let i = 0; i < 5; i++) {
    const data = job(small, 9)
    added.push(data.request)
    await jobQueue.add(small, data, 10)
  }
  t.same((await jobQueue.waiting.ofUsers([9], 3))[0].map((e) => e.request), added.slice(0, 3))
  t.same(await jobQueue.waiting.ofUsers([]), [])
})

t.test('a stalled job comes back at its priority and indexed', async (t) => {
  const { redis, jobQueue } = await openQueue(t, 300)
  const a = job(small, 4)
  await jobQueue.add(small, a, 40)
  const claimed = await jobQueue.claim(small.queue)
  t.equal(claimed?.job.id, a.request)
  await redis.ping()
  t.same(await jobQueue.waiting.ofUsers([4]), [[]])
  // Nothing renews the lock (start() was not called): the stalled check brings the job back.
  await once(jobQueue, 'returned')
  t.same((await jobQueue.waiting.ofUsers([4]))[0].map((e) => e.request), [a.request], 'indexed again')
  t.same(await jobQueue.heads([small.queue]), [{ queue: small.queue, request: a.request, priority: 40 }], 'at its priority')
})
