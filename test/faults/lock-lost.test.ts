/**
 * Fault: a running job's lock is lost (what a Redis outage longer than JOB_LOCK_SECONDS,
 * or an event loop stalled that long, does), so BullMQ's stalled check hands the job to a
 * second worker while the first still runs it. Then the first attempt ends (its worker
 * leaves). The live second attempt must keep its lock: no third worker may get the job,
 * and it settles once, with the second attempt's text.
 */
import path from 'node:path'
import t from 'tap'
import { Redis } from 'ioredis'
import { DB_FILE } from '../../src/db/open.js'
import { checkOutcome, writeFigures } from '../helpers/faults.js'
import { registerUser, sleep, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, serve, submit } from '../helpers/pipeline.js'

const LOCK_SECONDS = 1

t.test('a job whose lock was lost runs on a second worker; the first attempt ending does not release the second one', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url, dataDir } = await startBroker(t, { redis, env: { JOB_LOCK_SECONDS: String(LOCK_SECONDS), HEARTBEAT_SECONDS: '5', JOB_MAX_ATTEMPTS: '20' } })
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
  first.send({ type: 'chunk', job: id, seq: 0, text: 'old ' })

  // The lock vanishes, as after a Redis outage longer than the lock.
  const [lockKey] = await admin.keys(`hb:bull:*:${id}:lock`)
  t.ok(lockKey, 'the running job holds a lock')
  await admin.del(lockKey)
  const second = await rawWorker(wsUrl, owner.key, { name: 'second' })
  t.teardown(() => second.ws.terminate())
  const job2 = await second.next('job', 30_000)
  t.equal(job2.job, id, 'the stalled check handed the job to a second worker')
  t.ok(job2.attempt > job1.attempt, `a later attempt (${job2.attempt})`)
  second.send({ type: 'chunk', job: id, seq: 0, text: 'new ' })

  // The first attempt ends: its worker leaves. Its clean-up must not touch the second attempt.
  first.ws.terminate()
  const third = await rawWorker(wsUrl, owner.key, { name: 'third' })
  t.teardown(() => third.ws.terminate())
  await sleep(LOCK_SECONDS * 1000 * 5) // several lock periods and stalled checks
  t.equal(third.frames.filter((f) => f.type === 'job').length, 0, 'no third worker got the job while the second ran it')
  t.ok(broker.pipeline.jobQueue.isHeld(id), 'the second attempt still holds the job')
  t.equal(broker.pipeline.running.get(id)?.session.info?.name, 'second', 'the second attempt is still the running one')

  serve(second, id, ['new ', 'text'])
  const done = await watcher.next('done', 30_000)
  t.equal(done.text, 'new text', 'the second attempt\'s text')
  const outcome = await checkOutcome(t, { url, key: requester.key, ids: [id], dbFile: path.join(dataDir, DB_FILE) })
  t.equal(outcome.done, 1)
  writeFigures({
    name: 'lock-lost', file: 'test/faults/lock-lost.test.ts',
    injects: 'a running job\'s lock deleted (as by a Redis outage longer than the lock), then the first worker drops',
    faults: 2, ...outcome,
    notes: `dispatched to ${1 + (second.frames.some((f) => f.type === 'job') ? 1 : 0) + third.frames.filter((f) => f.type === 'job').length} workers; settled by the second`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
