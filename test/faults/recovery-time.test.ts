/**
 * Fault: a broker process dies (SIGKILL) while its worker runs jobs, and another process on
 * the same Redis and database stays up. The jobs must be back in their queue within one
 * `JOB_LOCK_SECONDS` plus one heartbeat of the kill (the locks, renewed every third of a lock,
 * expire within one lock; the stalled check runs every quarter lock), and then run to the end
 * on a worker of the live process, each settled once.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { auditDatabase, generationEntries, writeFigures } from '../helpers/faults.js'
import { rawWorker, serve } from '../helpers/pipeline.js'
import { api, eventually, registerUser, sleep, startTestRedis, tempDir } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'
const JOBS = 6
const LOCK_SECONDS = 4
const HEARTBEAT_SECONDS = 1

t.test(`kill -9 of the process holding ${JOBS} running jobs: back within one lock plus one heartbeat, then finished by the other process`, async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const dataDir = tempDir('horde-recovery-')
  const env = { JOB_LOCK_SECONDS: String(LOCK_SECONDS), HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) }
  const a = await startBrokerProcess(t, { redisUrl: redis.url, dataDir, env })
  const b = await startBrokerProcess(t, { redisUrl: redis.url, dataDir, env })
  const owner = await registerUser(a.url, 'recovery-owner')
  const requester = await registerUser(a.url, 'recovery-requester')
  const doomed = await rawWorker(a.url.replace(/^http/, 'ws'), owner.key, { name: 'doomed', models: [MODEL], threads: JOBS })
  t.teardown(() => doomed.close())

  const ids: string[] = []
  for (let i = 0; i < JOBS; i++) {
    const answer = await api(a.url, 'POST', '/v1/generate', { key: requester.key, body: { prompt: `story ${i}`, models: [MODEL], max_length: 16 } })
    t.equal(answer.status, 202, `request ${i} accepted`)
    ids.push(answer.body.id)
  }
  for (let i = 0; i < JOBS; i++) await doomed.next('job', 10_000)
  // Process B learns the class from the dispatch channel and opens it: its stalled check will find the jobs.
  await sleep(1000)

  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const queues = Object.keys(await admin.hgetall('hb:classes'))
  const active = async () => {
    let n = 0
    for (const q of queues) n += await admin.llen(`hb:bull:${q}:active`)
    return n
  }
  t.equal(await active(), JOBS, 'every job is active on the process about to die')

  const killedAt = Date.now()
  await a.kill()
  await eventually(async () => (await active()) === 0, 30_000, 'the jobs of the dead process to come back')
  const backAfter = (Date.now() - killedAt) / 1000
  t.ok(backAfter <= LOCK_SECONDS + HEARTBEAT_SECONDS, `back after ${backAfter.toFixed(2)} s, within JOB_LOCK_SECONDS + one heartbeat (${LOCK_SECONDS + HEARTBEAT_SECONDS} s)`)

  const rescuer = await rawWorker(b.url.replace(/^http/, 'ws'), owner.key, { name: 'rescuer', models: [MODEL], threads: JOBS })
  t.teardown(() => rescuer.close())
  const served = new Set<string>()
  while (served.size < JOBS) {
    const job = await rescuer.next('job', 15_000)
    served.add(job.job)
    setTimeout(() => serve(rescuer, job.job, ['Once', ' more']), 60)
  }
  t.equal(served.size, ids.length, 'the live process ran as many jobs as the dead one held (each request\'s being done is checked next)')
  await eventually(async () => {
    for (const id of ids) if ((await api(b.url, 'GET', `/v1/generate/${id}`, { key: requester.key })).body.state !== 'done') return false
    return true
  }, 15_000, 'every request to be done')
  const entries = await generationEntries(b.database)
  t.same(ids.map((id) => entries.get(id)), ids.map(() => 1), 'each settled once')
  const report = await auditDatabase(b.database)
  t.ok(report.ok, 'the ledger audits clean')
  writeFigures({
    name: 'recovery-time', file: 'test/faults/recovery-time.test.ts',
    injects: 'SIGKILL of the process holding running jobs; a second process stays up',
    faults: 1, accepted: JOBS, done: JOBS, failed: 0, stuck: 0, settlements: ids.length, doubleSettled: 0, audit: report.ok ? 'ok' : 'FAILED',
    notes: `jobs back in their queue ${backAfter.toFixed(2)} s after the kill (JOB_LOCK_SECONDS ${LOCK_SECONDS}, heartbeat ${HEARTBEAT_SECONDS} s)`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
