/**
 * Fault: Redis is killed (SIGKILL) during load and started again from its append-only
 * file, down for longer than a job lock. Submissions made while it is down wait for it;
 * jobs whose locks expired meanwhile come back through the stalled check (and may run a
 * second time: only one attempt is ever settled); every accepted request ends once.
 *
 * Then the lock loss alone, made deterministic: a running job's lock is deleted, so the
 * stalled check hands the job to a second worker while the first still runs it; the first
 * attempt then ends (its worker leaves). The live second attempt must keep its lock: no
 * third worker may get the job, and it settles once, with the second attempt's text.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { checkOutcome, generationEntries, writeFigures } from '../helpers/faults.js'
import { startFleet, submitMany } from '../helpers/fleet.js'
import { eventually, registerUser, sleep, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, serve, submit } from '../helpers/pipeline.js'
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
  const settledBefore = (await generationEntries(broker.database)).size

  await redis.kill()
  // Submissions while Redis is down are recorded in the database and wait for Redis to answer.
  const during = submitMany(broker.url, requester.key, DURING, { prefix: 'during', words: WORDS })
  await sleep(2500) // longer than JOB_LOCK_SECONDS: the running jobs' locks are gone when Redis is back
  await redis.restart()
  const second = await during
  t.same(second.refused, [], 'submissions made during the outage are accepted once Redis is back')

  const ids = [...first.ids, ...second.ids]
  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, database: broker.database })
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

const LOCK_SECONDS = 1

t.test('a job whose lock was lost runs on a second worker; the first attempt ending does not release the second one', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url, database } = await startBroker(t, { redis, env: { JOB_LOCK_SECONDS: String(LOCK_SECONDS), HEARTBEAT_SECONDS: '5', JOB_MAX_ATTEMPTS: '20' } })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())

  const first = await rawWorker(wsUrl, owner.key, { name: 'first' })
  t.teardown(() => first.ws.terminate())
  const watcher = await client(wsUrl, requester.key)
  t.teardown(() => watcher.close())
  const id = await submit(watcher, { max_length: 20 })
  const job1 = await first.next('job', 30_000)
  first.send({ type: 'chunk', job: job1.job, seq: 0, text: 'old ' })

  // The lock vanishes, as after a Redis outage longer than the lock.
  const [lockKey] = await admin.keys(`hb:bull:*:${id}:lock`)
  t.ok(lockKey, 'the running job holds a lock')
  await admin.del(lockKey)
  const second = await rawWorker(wsUrl, owner.key, { name: 'second' })
  t.teardown(() => second.ws.terminate())
  const job2 = await second.next('job', 30_000)
  t.equal(job2.forRequest, id, 'the stalled check handed the job to a second worker')
  t.ok(job2.attempt > job1.attempt, `a later attempt (${job2.attempt})`)
  second.send({ type: 'chunk', job: job2.job, seq: 0, text: 'new ' })

  // The first attempt ends: its worker leaves. Its clean-up must not touch the second attempt.
  first.ws.terminate()
  const third = await rawWorker(wsUrl, owner.key, { name: 'third' })
  t.teardown(() => third.ws.terminate())
  await sleep(LOCK_SECONDS * 1000 * 5) // several lock periods and stalled checks
  t.equal(third.frames.filter((f) => f.type === 'job').length, 0, 'no third worker got the job while the second ran it')
  t.ok(broker.jobQueue.isHeld(id), 'the second attempt still holds the job')
  t.equal(broker.core.runner.running(id)?.worker.info?.name, 'second', 'the second attempt is still the running one')

  serve(second, job2.job, ['new ', 'text'])
  const done = await watcher.next('done', 30_000)
  t.equal(done.text, 'new text', 'the second attempt\'s text')
  const outcome = await checkOutcome(t, { url, key: requester.key, ids: [id], database })
  t.equal(outcome.done, 1)
  writeFigures({
    name: 'lock-lost', file: 'test/faults/redis-kill.test.ts',
    injects: 'a running job\'s lock deleted (as by a Redis outage longer than the lock), then the first worker drops',
    faults: 2, ...outcome,
    notes: `dispatched to ${1 + (second.frames.some((f) => f.type === 'job') ? 1 : 0) + third.frames.filter((f) => f.type === 'job').length} workers; settled by the second`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
