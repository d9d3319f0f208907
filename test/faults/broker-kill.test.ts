/**
 * Fault: the broker process is killed (SIGKILL) and started again on the same port and
 * data directory. Reference workers reconnect by themselves; jobs that were running on the
 * dead process come back once their locks expire (BullMQ's stalled check, run by the new
 * process's per-queue fetchers); every accepted request ends once.
 *
 * Two moments: in the middle of 50 streams; and between the settlement (SQLite, committed)
 * and the queue completion (Redis, held back by stopping Redis with SIGSTOP), so that every
 * job comes back already settled and must be completed without running again.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { checkOutcome, generationEntries, writeFigures } from '../helpers/faults.js'
import { startFleet, submitMany } from '../helpers/fleet.js'
import { eventually, registerUser, sleep, startTestRedis } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const STREAMS = 50
const WORDS = 60

t.test('broker kill -9 in the middle of 50 streams: every request ends once, the ledger audits clean', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')
  // 50 slots: every stream runs at once, each for WORDS x 50 ms at least.
  const fleet = await startFleet(t, broker.url, owner.key, { count: 10, threads: 5, delayMs: 50 })

  const { ids, refused } = await submitMany(broker.url, requester.key, STREAMS, { prefix: 'stream', words: WORDS })
  t.same(refused, [], 'all streams accepted')
  await eventually(() => fleet.jobs >= STREAMS, 60_000, 'the streams to start')
  await sleep(300)
  const settledBefore = (await generationEntries(broker.database)).size
  const inFlight = fleet.jobs - settledBefore
  await broker.kill()
  await broker.restart()

  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, database: broker.database })
  t.equal(outcome.done, STREAMS, 'every stream finished done')
  const again = fleet.jobs - STREAMS
  writeFigures({
    name: 'broker-kill', file: 'test/faults/broker-kill.test.ts',
    injects: 'SIGKILL of the broker process mid-stream, restart on the same port and data dir',
    faults: 1, ...outcome,
    notes: `${settledBefore} settled before the kill, ${inFlight} streams in flight at the kill, ${again} dispatched again after the restart`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})

t.test('broker kill -9 after settling but before completing in Redis: the jobs come back and are completed without running', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')
  const fleet = await startFleet(t, broker.url, owner.key, { count: 4, threads: 2, delayMs: 20 })
  const count = 8
  const { ids, refused } = await submitMany(broker.url, requester.key, count, { prefix: 'settled', words: 10 })
  t.same(refused, [], 'all accepted')
  await eventually(() => fleet.jobs >= count, 60_000, 'every job dispatched')

  // Redis stops answering: settlements still commit in SQLite, the completions hang.
  process.kill(redis.pid!, 'SIGSTOP')
  let resumed = false
  t.teardown(() => { if (!resumed) process.kill(redis.pid!, 'SIGCONT') })
  await eventually(async () => { const entries = await generationEntries(broker.database); return ids.every((id) => entries.get(id) === 1) }, 60_000, 'every job settled in the database')
  await broker.kill()
  process.kill(redis.pid!, 'SIGCONT')
  resumed = true
  await broker.restart()

  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  // The jobs were active on the dead broker: its locks expire, the stalled check returns
  // them, the restarted broker claims each for a reconnected worker, sees it settled and
  // completes it (removeOnComplete: the queue ends empty).
  const left = async () => {
    const queues = Object.keys(await admin.hgetall('hb:classes'))
    let n = 0
    for (const q of queues) {
      n += (await admin.llen(`hb:bull:${q}:active`)) + (await admin.llen(`hb:bull:${q}:wait`)) + (await admin.zcard(`hb:bull:${q}:prioritized`))
    }
    return n
  }
  await eventually(async () => (await left()) === 0, 60_000, 'the settled jobs to be completed')
  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, database: broker.database })
  t.equal(outcome.done, count)
  t.same([...fleet.dispatches.values()], ids.map(() => 1), 'no settled job was handed to a worker again')
  writeFigures({
    name: 'broker-kill-after-settle', file: 'test/faults/broker-kill.test.ts',
    injects: 'Redis paused (SIGSTOP) so completions hang after settlement; SIGKILL of the broker; Redis resumed; broker restarted',
    faults: 2, ...outcome,
    notes: `${count} jobs settled in SQLite but active in Redis at the kill; all completed without a second dispatch (${fleet.jobs} dispatches)`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
