/**
 * Fault: Redis is killed (SIGKILL) during load and started again from its append-only
 * file, down for longer than a job lock. Submissions made while it is down wait for it;
 * jobs whose locks expired meanwhile come back through the stalled check (and may run a
 * second time: only one attempt is ever settled); every accepted request ends once.
 */
import t from 'tap'
import { checkOutcome, generationEntries, writeFigures } from '../helpers/faults.js'
import { startFleet, submitMany } from '../helpers/fleet.js'
import { eventually, registerUser, sleep, startTestRedis } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const FIRST = 12
const DURING = 5
const WORDS = 150

t.test('Redis kill -9 and restart from its AOF during load: every request ends once, audit ok', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t, { appendOnly: true })
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')
  // 24 slots: 12 streams of 6 s or more run when Redis dies, 5 more arrive during the
  // outage, and 7 slots stay free for jobs that come back while still streaming elsewhere.
  const fleet = await startFleet(t, broker.url, owner.key, { count: 8, threads: 3, delayMs: 40 })

  const first = await submitMany(broker.url, requester.key, FIRST, { prefix: 'before', words: WORDS })
  t.same(first.refused, [], 'submissions before the fault are accepted')
  await eventually(() => fleet.jobs >= FIRST, 60_000, 'streams to start')
  await sleep(300)
  const settledBefore = generationEntries(broker.dbFile).size

  await redis.kill()
  // Submissions while Redis is down are recorded in SQLite and wait for Redis to answer.
  const during = submitMany(broker.url, requester.key, DURING, { prefix: 'during', words: WORDS })
  await sleep(2500) // longer than JOB_LOCK_SECONDS: the running jobs' locks are gone when Redis is back
  await redis.restart()
  const second = await during
  t.same(second.refused, [], 'submissions made during the outage are accepted once Redis is back')

  const ids = [...first.ids, ...second.ids]
  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, dbFile: broker.dbFile })
  t.equal(outcome.done, ids.length, 'every request finished done')
  // A job whose lock expired during the outage may have been handed to a second worker
  // while the first still streamed it: both ran, one settled (checked above).
  const twice = [...fleet.dispatches.values()].filter((n) => n > 1).length
  writeFigures({
    name: 'redis-kill', file: 'test/faults/redis-kill.test.ts',
    injects: 'SIGKILL of Redis under load, down 2.5 s (> job lock), restarted from its AOF',
    faults: 1, ...outcome,
    notes: `${settledBefore} settled before the kill; ${second.ids.length} submitted during the outage; ${fleet.jobs} dispatches for ${ids.length} requests (${twice} run twice after losing their lock, each settled once)`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
