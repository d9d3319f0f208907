/**
 * Fault: SIGTERM while streams run, past the drain's patience: at DRAIN_SECONDS what still
 * runs is stopped and handed back to its queue (not left to its lock); a second signal exits
 * at once. (test/faults/drain.test.ts: the drain that lets every stream finish.)
 */
import t from 'tap'
import { checkOutcome, writeFigures } from '../helpers/faults.js'
import { startFleet, submitMany } from '../helpers/fleet.js'
import { api, eventually, registerUser, sleep, startTestRedis } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const STREAMS = 10

t.test('the drain deadline: what still runs is stopped and handed back to the queue at once, not after its lock', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  // A lock far longer than the test: a job that were merely abandoned would not come back in time.
  const broker = await startBrokerProcess(t, { redisUrl: redis.url, env: { DRAIN_SECONDS: '1', JOB_LOCK_SECONDS: '600' } })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')
  const fleet = await startFleet(t, broker.url, owner.key, { count: 5, threads: 2, delayMs: 200 })
  const { ids } = await submitMany(broker.url, requester.key, STREAMS, { prefix: 'deadline', words: 60 })
  await eventually(() => fleet.jobs >= STREAMS, 60_000, 'the streams to start')
  const signalled = Date.now()
  broker.send('SIGTERM')
  t.equal(await broker.exited(), 0, 'the broker exits 0 after handing the rest back')
  t.ok(Date.now() - signalled < 20_000, `it stopped within the deadline plus shutdown (${Date.now() - signalled} ms)`)

  await broker.restart()
  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, database: broker.database, timeoutMs: 90_000 })
  t.equal(outcome.done, STREAMS, 'every stream finished done after the restart, each settled once')
  t.ok([...fleet.dispatches.values()].some((n) => n >= 2), 'the handed-back streams ran again')
  writeFigures({
    name: 'drain-deadline', file: 'test/faults/drain-deadline.test.ts', injects: 'SIGTERM while 10 long streams run (DRAIN_SECONDS=1, JOB_LOCK_SECONDS=600), then a restart',
    faults: 1, ...outcome, notes: `${fleet.jobs} dispatches for ${STREAMS} streams`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})

t.test('a second signal exits at once', async (t) => {
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url, env: { DRAIN_SECONDS: '120' } })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')
  const fleet = await startFleet(t, broker.url, owner.key, { count: 2, threads: 2, delayMs: 500 })
  await submitMany(broker.url, requester.key, 4, { prefix: 'twice', words: 100 })
  await eventually(() => fleet.jobs >= 4, 60_000, 'the streams to start')
  broker.send('SIGTERM')
  await eventually(async () => (await api(broker.url, 'GET', '/health')).status === 503, 10_000, 'the drain to start')
  const second = Date.now()
  broker.send('SIGTERM')
  t.equal(await broker.exited(), 1, 'the second signal ends the process with 1')
  t.ok(Date.now() - second < 5000, `at once (${Date.now() - second} ms), not after the streams`)
})
