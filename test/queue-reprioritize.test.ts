import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { priorityForBalance } from '../src/economy/priority.js'
import { classOf } from '../src/queue/classes.js'
import { JobQueue, type JobData } from '../src/queue/job-queue.js'
import { createKeys } from '../src/queue/keys.js'
import { createReprioritizer, type ReprioritizerOptions } from '../src/queue/reprioritize.js'
import { startTestRedis } from './helpers/harness.js'

const server = await startTestRedis(t)
const cls = classOf(['m'], 80, 1024)

/** A JobQueue and a reprioritizer over balances the test sets, on a prefix of their own. */
async function setup(t: Test, overrides: Partial<ReprioritizerOptions> = {}) {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  const jobQueue = new JobQueue({ redis, keys: createKeys(`t-${randomUUID().slice(0, 8)}`), lockMs: 30_000, maxAttempts: 3 })
  const balances = new Map<number, number>()
  const errors: unknown[] = []
  const reprioritizer = createReprioritizer({
    jobQueue,
    // Asynchronous, as the storage layer's will be.
    balanceOf: async (userId) => balances.get(userId) ?? 0,
    usersWaiting: async () => [...balances.keys()],
    ageingBonusPer10s: 0,
    log: (error) => errors.push(error),
    ...overrides,
  })
  t.teardown(async () => {
    reprioritizer.close()
    await reprioritizer.idle()
    await jobQueue.close()
    await redis.quit()
  })
  let at = 1_700_000_000_000
  async function submit(userId: number): Promise<string> {
    const request = randomUUID()
    const data: JobData = { request, userId, prompt: 'p', models: cls.models, max_length: 80, max_context_length: 1024, params: {}, submittedAt: at++, classKey: cls.key }
    await jobQueue.addWithPosition(cls, data, priorityForBalance(balances.get(userId) ?? 0))
    return request
  }
  /** The queue's waiting jobs in the order BullMQ will pop them, with their priorities. */
  async function order(): Promise<Array<[string, number]>> {
    const out: Array<[string, number]> = []
    for (;;) {
      const heads = await jobQueue.heads([cls.queue])
      if (heads.length === 0) break
      const claimed = (await jobQueue.claim(cls.queue))!
      t.equal(claimed.job.id, heads[0].request, 'the head read is what BullMQ pops')
      out.push([heads[0].request, heads[0].priority])
      await jobQueue.complete(claimed)
    }
    return out
  }
  return { redis, jobQueue, balances, errors, reprioritizer, submit, order }
}

t.test('a balance change moves the user\'s requests to the new bucket, FIFO kept', async (t) => {
  const { balances, reprioritizer, submit, order, errors } = await setup(t)
  balances.set(1, 0)
  balances.set(2, 5_000_000)
  const mine = [await submit(1), await submit(1), await submit(1)]
  const rich = await submit(2)
  balances.set(1, 50_000_000)
  reprioritizer.balanceChanged(1, 50_000_000)
  await reprioritizer.idle()
  const p = priorityForBalance(50_000_000)
  t.same(await order(), [...mine.map((id) => [id, p]), [rich, priorityForBalance(5_000_000)]], 'all three ahead now, in submission order')
  t.same(errors, [])
})

t.test('a change inside the bucket costs nothing: no pass, no read', async (t) => {
  let reads = 0
  const { balances, reprioritizer, submit, jobQueue } = await setup(t, {
    balanceOf: async () => {
      reads++
      return 1_000_000
    },
  })
  balances.set(1, 1_000_000)
  await submit(1)
  // The first change runs a pass (nothing is known yet), which records the bucket.
  reprioritizer.balanceChanged(1, 1_000_000)
  await reprioritizer.idle()
  t.equal(reads, 1)
  const ofUser = jobQueue.waiting.ofUser.bind(jobQueue.waiting)
  let indexReads = 0
  jobQueue.waiting.ofUser = (userId) => {
    indexReads++
    return ofUser(userId)
  }
  reprioritizer.balanceChanged(1, 1_000_001)
  t.equal(reads, 1, 'the balance came with the event')
  await reprioritizer.idle()
  t.equal(indexReads, 0, 'and no pass ran')
})

t.test('bursts coalesce into passes that end at the latest balance', async (t) => {
  const { balances, reprioritizer, submit, order } = await setup(t)
  balances.set(1, 0)
  const id = await submit(1)
  for (let i = 1; i <= 20; i++) {
    balances.set(1, i * 1_000_000)
    reprioritizer.balanceChanged(1, i * 1_000_000)
  }
  await reprioritizer.idle()
  t.same(await order(), [[id, priorityForBalance(20_000_000)]])
})

t.test('the ageing sweep reads the waiting users asynchronously and adds the bonus', async (t) => {
  let now = 1_700_000_000_000
  const { balances, reprioritizer, submit, order } = await setup(t, { ageingBonusPer10s: 1, now: () => now })
  balances.set(1, 0)
  const id = await submit(1)
  now += 60_000
  await reprioritizer.ageAll()
  t.same(await order(), [[id, priorityForBalance(6_000)]], 'six periods waited: six kudos of bonus')
})
