import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { classOf, type RequestClass } from '../src/queue/classes.js'
import { JobQueue, type JobData } from '../src/queue/job-queue.js'
import { createKeys } from '../src/queue/keys.js'
import { startTestRedis } from './helpers/harness.js'

const server = await startTestRedis(t)
const A = classOf(['a'], 80, 1024)
const B = classOf(['b'], 80, 1024)

t.test('positions, heads and counts across queues, as BullMQ pops them', async (t) => {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  const jobQueue = new JobQueue({ redis, keys: createKeys(`t-${randomUUID().slice(0, 8)}`), lockMs: 30_000, maxAttempts: 3 })
  t.teardown(async () => {
    await jobQueue.close()
    await redis.quit()
  })
  let at = 1_700_000_000_000
  const ids = new Map<string, string>()
  async function add(name: string, cls: RequestClass, priority: number): Promise<number> {
    const request = `${String(at).padStart(16, '0')}-${randomUUID()}`
    ids.set(name, request)
    const data: JobData = { request, userId: 1, prompt: 'p', models: cls.models, max_length: 80, max_context_length: 1024, params: {}, submittedAt: at++, classKey: cls.key }
    return jobQueue.addWithPosition(cls, data, priority)
  }
  t.equal(await add('a1', A, 100), 0)
  t.equal(await add('b1', B, 75), 0, 'nothing better than 75 anywhere')
  t.equal(await add('a2', A, 100), 2, 'a1 in its queue, b1 better elsewhere')
  t.equal(await add('a3', A, 50), 0, 'better than everything')
  t.equal(await add('b2', B, 100), 2, 'b1 in its queue; a3 better elsewhere (a1 and a2 only equal it)')

  t.equal(await jobQueue.position(A.queue, ids.get('a2')!, 100), 3, 'a3, a1 in its queue; b1 better elsewhere')
  t.equal(await jobQueue.position(B.queue, ids.get('b1')!, 75), 1, 'only a3 is better')
  t.equal(await jobQueue.position(A.queue, 'not-there', 100), null)
  t.same(await jobQueue.heads([A.queue, B.queue]), [
    { queue: A.queue, request: ids.get('a3'), priority: 50 },
    { queue: B.queue, request: ids.get('b1'), priority: 75 },
  ])
  t.same([...(await jobQueue.counts([A.queue, B.queue]))], [[A.queue, 3], [B.queue, 2]])
  t.same(await jobQueue.exists([{ queue: A.queue, request: ids.get('a1')! }, { queue: B.queue, request: ids.get('a1')! }]), [true, false])

  // BullMQ's pop order within A matches what the positions said.
  const popped: string[] = []
  for (;;) {
    const claimed = await jobQueue.claim(A.queue)
    if (!claimed) break
    popped.push(claimed.job.id!)
    await jobQueue.complete(claimed)
  }
  t.same(popped, ['a3', 'a1', 'a2'].map((name) => ids.get(name)))
  t.same(await jobQueue.heads([A.queue, B.queue]), [{ queue: B.queue, request: ids.get('b1'), priority: 75 }], 'an empty queue has no head')
})
