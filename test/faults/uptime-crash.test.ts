/**
 * Fault: a broker process dies (SIGKILL) holding a worker whose observed uptime it has not
 * paid yet (its flush is far off). Another process on the same Redis and database adopts
 * the dead process's uptime journal once its liveness lapses and pays the owner for the
 * time online, up to the last heartbeat the dead process wrote down; nothing is paid twice
 * and the ledger audits clean. Without the journal nothing of it would ever be paid.
 */
import t from 'tap'
import { auditDatabase, writeFigures } from '../helpers/faults.js'
import { openSideStore } from '../helpers/database.js'
import { rawWorker } from '../helpers/pipeline.js'
import { eventually, registerUser, sleep, startTestRedis, tempDir } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'
const HEARTBEAT_SECONDS = 0.5
const ONLINE_MS = 5000

t.test('kill -9 of the process holding a worker: another process pays the uptime it had observed and not paid', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const dataDir = tempDir('horde-uptime-crash-')
  const common = { HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS), KUDOS_UPTIME_PERIOD_SECONDS: '1' }
  // A would pay in ten minutes; B pays (and adopts the dead's journals) every second.
  const a = await startBrokerProcess(t, { redisUrl: redis.url, dataDir, env: { ...common, KUDOS_UPTIME_FLUSH_SECONDS: '600' } })
  const b = await startBrokerProcess(t, { redisUrl: redis.url, dataDir, env: { ...common, KUDOS_UPTIME_FLUSH_SECONDS: '1' } })
  const owner = await registerUser(a.url, 'uptime-owner')
  const worker = await rawWorker(a.url.replace(/^http/, 'ws'), owner.key, { name: 'steady', models: [MODEL] })
  t.teardown(() => worker.close())
  const onlineFrom = Date.now()
  await sleep(ONLINE_MS)
  const onlineMs = Date.now() - onlineFrom

  const store = await openSideStore(b.database)
  t.teardown(() => store.close())
  const before = await store.workers.byName('steady')
  t.equal(before?.uptimeMs, 0, 'nothing was paid before the kill (the flush is ten minutes away)')

  await a.kill()
  await eventually(async () => ((await store.workers.byName('steady'))?.uptimeMs ?? 0) > 0, 30_000, 'the live process to pay the dead one\'s journal')
  const paid = (await store.workers.byName('steady'))!
  // The dead process wrote down what had accrued at each heartbeat: all of it but the last half second or so.
  t.ok(paid.uptimeMs <= onlineMs + 50, `paid ${paid.uptimeMs} ms, no more than the ${onlineMs} ms it was online`)
  t.ok(paid.uptimeMs >= onlineMs - 4 * HEARTBEAT_SECONDS * 1000, `paid ${paid.uptimeMs} ms, within a few heartbeats of the ${onlineMs} ms online`)
  const balance = (await store.ledger.account(owner.id))?.balance ?? 0
  t.ok(balance > 0, 'the owner holds the uptime reward')
  t.equal(balance, paid.earned, 'the owner was credited exactly what the worker earned')

  // Later flushes and adoptions pay nothing more: the journal was forgotten, its refs are posted.
  await sleep(2500)
  t.equal((await store.workers.byName('steady'))!.uptimeMs, paid.uptimeMs, 'paid once')
  const report = await auditDatabase(b.database)
  t.ok(report.ok, 'the ledger audits clean')
  writeFigures({
    name: 'uptime-crash', file: 'test/faults/uptime-crash.test.ts',
    injects: 'SIGKILL of the process holding a worker before it paid its uptime; a second process stays up',
    faults: 1, accepted: 0, done: 0, failed: 0, stuck: 0, settlements: 0, doubleSettled: 0, audit: report.ok ? 'ok' : 'FAILED',
    notes: `${paid.uptimeMs} ms of ${onlineMs} ms online paid by the live process (heartbeat ${HEARTBEAT_SECONDS} s)`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
