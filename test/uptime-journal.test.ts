/**
 * The uptime journal (src/cluster/uptime-journal.ts) on a real Redis and a real store: a
 * lapsed process's journal is paid once and forgotten, a credit the dead process had posted
 * is not paid again, a live process's journal is left alone, a broker writes down what its
 * workers accrued under the ref its next payment uses, and a flush whose ref another process
 * already paid neither fails nor pays twice. The kill -9 across processes is
 * test/faults/uptime-crash.test.ts.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { createClusterKeys } from '../src/cluster/keys.js'
import { createRedisUptimeJournal } from '../src/cluster/uptime-journal.js'
import { balanceOf, eventually, ledgerInvariant, registerUser, sleep, startBroker, startTestRedis } from './helpers/harness.js'
import { rawWorker } from './helpers/pipeline.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

async function setUp(t: any) {
  const redis = await startTestRedis(t)
  const started = await startBroker(t, { redis, env: { HEARTBEAT_SECONDS: '0.2', KUDOS_UPTIME_FLUSH_SECONDS: '600', KUDOS_UPTIME_PERIOD_SECONDS: '1' } })
  const keys = createClusterKeys(started.config.redisPrefix)
  const side = new Redis(redis.url)
  t.teardown(() => side.quit())
  const owner = await registerUser(started.url, 'journal-owner')
  return { ...started, redis, keys, side, owner }
}

t.test('a lapsed process\'s journal is paid once, a ref it had paid is skipped, and the journal is forgotten', async (t) => {
  const { broker, wsUrl, keys, side, owner } = await setUp(t)
  // Two worker rows for the dead process's credits (one entry per worker); the workers leave.
  const ids: number[] = []
  for (const name of ['gone-1', 'gone-2']) {
    const worker = await rawWorker(wsUrl, owner.key, { name, models: [MODEL] })
    ids.push((worker.frames.find((f) => f.type === 'ready') as any).worker_id as number)
    worker.close()
  }
  await eventually(() => broker.core.workforce.online.size === 0, 5000, 'the workers to leave')
  await sleep(300) // their uptime is paid as they leave
  const baseline = await balanceOf(broker, owner.id)

  const dead = createRedisUptimeJournal({ redis: side, keys, processId: 'dead-1', ttlMs: 50 })
  const unpaid = { workerId: ids[0], ownerId: owner.id, ms: 2000, milli: 5000, ref: `${ids[0]}:deadrun:1` }
  const paidBefore = { workerId: ids[1], ownerId: owner.id, ms: 1000, milli: 3000, ref: `${ids[1]}:deadrun:1` }
  await broker.services.store.workers.creditUptime([paidBefore], Date.now())
  await dead.checkpoint([paidBefore, unpaid])
  t.equal(await side.hlen(keys.uptimePending('dead-1')), 2, 'the journal holds both credits')
  await sleep(100)

  t.equal(await broker.core.uptimePayer.adoptOrphans(), 5000, 'only the unpaid credit is minted')
  t.equal(await balanceOf(broker, owner.id), baseline + 8, 'the owner got the 3 kudos paid before and the 5 it was owed, no more')
  t.equal(await side.exists(keys.uptimePending('dead-1')), 0, 'the journal is forgotten')
  t.equal(await side.zscore(keys.uptimeHolders, 'dead-1'), null, 'and so is its holder')
  t.equal(await broker.core.uptimePayer.adoptOrphans(), 0, 'a second adoption pays nothing')
  t.equal(await balanceOf(broker, owner.id), baseline + 8, 'the balance stands')
  t.same((await ledgerInvariant(broker)).problems, [], 'the ledger audits clean')
})

t.test('a live process\'s journal is left alone, and damaged entries are skipped', async (t) => {
  const { broker, wsUrl, keys, side, owner } = await setUp(t)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'kept', models: [MODEL] })
  t.teardown(() => worker.close())
  const workerId = (worker.frames.find((f) => f.type === 'ready') as any).worker_id as number
  const alive = createRedisUptimeJournal({ redis: side, keys, processId: 'alive-1', ttlMs: 60_000 })
  await alive.checkpoint([{ workerId, ownerId: owner.id, ms: 1000, milli: 1000, ref: `${workerId}:aliverun:1` }])
  t.equal(await broker.core.uptimePayer.adoptOrphans(), 0, 'nothing of a live process is paid')
  t.equal(await side.hlen(keys.uptimePending('alive-1')), 1, 'its journal stays')

  // A lapsed journal with values no broker wrote: skipped, and the journal still forgotten.
  await side.hset(keys.uptimePending('broken-1'), '1', 'not json', '2', JSON.stringify({ workerId, ownerId: owner.id, ms: 5, milli: -7, ref: 'x' }))
  await side.zadd(keys.uptimeHolders, 1, 'broken-1')
  t.equal(await broker.core.uptimePayer.adoptOrphans(), 0, 'damaged entries mint nothing')
  t.equal(await side.exists(keys.uptimePending('broken-1')), 0, 'the damaged journal is forgotten')
})

t.test('a broker journals its workers\' accrual under the next ref; a flush whose ref was paid elsewhere pays nothing twice', async (t) => {
  const { broker, wsUrl, keys, side, owner } = await setUp(t)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'journaled', models: [MODEL] })
  t.teardown(() => worker.close())
  const workerId = (worker.frames.find((f) => f.type === 'ready') as any).worker_id as number
  await eventually(() => broker.core.workforce.uptime.accrued('journaled') > 600, 10_000, 'some uptime to accrue')
  await broker.core.uptimePayer.checkpoint()
  const [self] = await side.zrange(keys.uptimeHolders, '0', '-1')
  t.ok(self, 'the broker is a journal holder')
  const entry = JSON.parse((await side.hget(keys.uptimePending(self), String(workerId)))!)
  t.match(entry.ref, new RegExp(`^${workerId}:[0-9a-f]{8}:1$`), 'the entry names the first payment\'s ref')
  t.ok(entry.milli > 0 && entry.ownerId === owner.id, 'and what it would pay, to the owner')

  // Another process takes this one for dead and pays the journaled ref first.
  await broker.services.store.workers.creditUptime([entry], Date.now())
  const afterAdoption = await balanceOf(broker, owner.id)
  const minted = await broker.core.uptimePayer.flush(broker.core.workforce.online)
  t.equal(minted, 0, 'the flush of that ref mints nothing')
  t.equal(await balanceOf(broker, owner.id), afterAdoption, 'the owner is not paid twice')

  // The next payment moves on to the next ref and is paid.
  await eventually(() => broker.core.workforce.uptime.accrued('journaled') > 600, 10_000, 'more uptime to accrue')
  await broker.core.uptimePayer.checkpoint()
  const next = JSON.parse((await side.hget(keys.uptimePending(self), String(workerId)))!)
  t.match(next.ref, new RegExp(`^${workerId}:[0-9a-f]{8}:2$`), 'the journal names the next ref')
  t.ok(await broker.core.uptimePayer.flush(broker.core.workforce.online) > 0, 'which a flush pays')
  t.ok(await balanceOf(broker, owner.id) > afterAdoption, 'to the owner')
  t.same((await ledgerInvariant(broker)).problems, [], 'the ledger audits clean')
})
