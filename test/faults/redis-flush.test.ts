/**
 * Fault: Redis is flushed (FLUSHALL) during load: waiting jobs, running jobs' locks, the
 * per-user waiting index and bucket keys, the class registry all vanish. SQLite still knows
 * every accepted request: running jobs settle from the broker's memory, waiting ones are
 * queued again by the reconciler (every RECONCILE_SECONDS); every request ends once.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { checkOutcome, generationEntries, writeFigures } from '../helpers/faults.js'
import { startFleet, submitMany } from '../helpers/fleet.js'
import { eventually, registerUser, sleep, startTestRedis } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const BEFORE = 50
const AFTER = 10
const WORDS = 50

t.test('Redis FLUSHALL during load: every accepted request ends once, audit ok', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')
  const fleet = await startFleet(t, broker.url, owner.key, { count: 8, threads: 3, delayMs: 40 })

  const first = await submitMany(broker.url, requester.key, BEFORE, { prefix: 'before', words: WORDS })
  t.same(first.refused, [], 'submissions before the fault are accepted')
  await eventually(() => fleet.jobs >= 20, 60_000, 'streams to start')
  await sleep(300)
  const settledBefore = (await generationEntries(broker.database)).size

  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const keysBefore = await admin.dbsize()
  await admin.flushall()
  const second = await submitMany(broker.url, requester.key, AFTER, { prefix: 'after', words: WORDS })
  t.same(second.refused, [], 'submissions after the flush are accepted')

  const ids = [...first.ids, ...second.ids]
  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, database: broker.database })
  t.equal(outcome.done, ids.length, 'every request finished done')
  // The per-user waiting index went with the flush; reconcile rebuilt it for the requests it
  // queued again, and dispatch drained it: nothing is left to mislead preferred dispatch.
  await eventually(async () => {
    let members = 0
    for (const key of await admin.keys('hb:waiting:*')) members += await admin.zcard(key)
    return members === 0
  }, 30_000, 'the per-user waiting index to drain')
  writeFigures({
    name: 'redis-flush', file: 'test/faults/redis-flush.test.ts',
    injects: `FLUSHALL under load (${keysBefore} keys), then more submissions`,
    faults: 1, ...outcome,
    notes: `${settledBefore} settled before the flush; ${second.ids.length} submitted after it; ${fleet.jobs} dispatches for ${ids.length} requests`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})

t.test('Redis FLUSHALL, more submissions, then a broker restart: the requests Redis holds are still served', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const requester = await registerUser(broker.url, 'requester')
  const owner = await registerUser(broker.url, 'owner')
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())

  // No worker yet: everything waits in Redis.
  const before = await submitMany(broker.url, requester.key, 2, { prefix: 'before', words: 5 })
  await admin.flushall() // the jobs, and the registry of request classes, are gone
  const after = await submitMany(broker.url, requester.key, 3, { prefix: 'after', words: 5 })
  t.same([...before.refused, ...after.refused], [], 'all accepted')
  const ids = [...before.ids, ...after.ids]
  // The reconciler queues the flushed ones again; all five are in Redis now.
  await eventually(async () => (await admin.keys('hb:bull:*')).filter((k) => ids.some((id) => k.endsWith(`:${id}`))).length === ids.length, 30_000, 'all five queued in Redis')
  await broker.kill()
  await broker.restart()

  // A worker arrives at the restarted broker: it must find the waiting requests, although
  // no process wrote their class to the registry since the flush.
  // 10 ms a word: billed tokens are bounded by the time the job ran (docs/security.md), and an instant answer is billed nothing.
  const fleet = await startFleet(t, broker.url, owner.key, { count: 1, threads: 2, delayMs: 10 })
  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, database: broker.database, timeoutMs: 30_000 })
  t.equal(outcome.done, ids.length, 'every request finished done')
  writeFigures({
    name: 'redis-flush-restart', file: 'test/faults/redis-flush.test.ts',
    injects: 'FLUSHALL, submissions of an already-known class, SIGKILL and restart of the broker',
    faults: 2, ...outcome,
    notes: `${fleet.jobs} dispatches for ${ids.length} requests`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
