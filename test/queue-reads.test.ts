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
const C = classOf(['c'], 80, 1024)

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
  t.equal(await add('b2', B, 100), 4, 'b1 in its queue; a3 better elsewhere, a1 and a2 equal it and came first')

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

t.test('equal priorities in several classes: the earlier request is ahead, whichever class it is in', async (t) => {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  const jobQueue = new JobQueue({ redis, keys: createKeys(`t-${randomUUID().slice(0, 8)}`), lockMs: 30_000, maxAttempts: 3 })
  t.teardown(async () => {
    await jobQueue.close()
    await redis.quit()
  })
  let at = 1_700_000_000_000
  const added: Array<{ name: string; cls: RequestClass; priority: number; request: string; position: number }> = []
  async function add(name: string, cls: RequestClass, priority: number): Promise<void> {
    const request = `${String(at).padStart(16, '0')}-${randomUUID()}`
    const data: JobData = { request, userId: 1, prompt: 'p', models: cls.models, max_length: 80, max_context_length: 1024, params: {}, submittedAt: at++, classKey: cls.key }
    added.push({ name, cls, priority, request, position: await jobQueue.addWithPosition(cls, data, priority) })
  }
  // Three classes at one priority, submitted in turn; then one better request in the last class.
  for (const name of ['a1', 'b1', 'c1', 'a2', 'b2', 'c2', 'a3', 'b3']) await add(name, { a: A, b: B, c: C }[name[0]]!, 100)
  await add('c-better', C, 60)
  t.same(added.map((job) => job.position), [0, 1, 2, 3, 4, 5, 6, 7, 0], 'each new request counts every earlier one of its priority, in every class')

  const positions = new Map<string, number | null>()
  for (const job of added) positions.set(job.name, await jobQueue.position(job.cls.queue, job.request, job.priority))
  t.same(Object.fromEntries(positions), { 'c-better': 0, a1: 1, b1: 2, c1: 3, a2: 4, b2: 5, c2: 6, a3: 7, b3: 8 },
    'the better request first, then submission order across the classes')

  // Served as the dispatcher serves a worker of all three classes: the best head, ties to the older id.
  const popped: string[] = []
  for (;;) {
    const heads = await jobQueue.heads([A.queue, B.queue, C.queue])
    if (heads.length === 0) break
    const best = heads.reduce((b, h) => (h.priority < b.priority || (h.priority === b.priority && h.request < b.request) ? h : b))
    const claimed = (await jobQueue.claim(best.queue))!
    popped.push(added.find((job) => job.request === claimed.job.id)!.name)
    await jobQueue.complete(claimed)
  }
  t.same(popped.map((name) => positions.get(name)), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'each request is served after exactly as many as its position said')
})
