/**
 * Fault: the broker process is killed (SIGKILL) in the middle of 50 streams and started
 * again on the same port and data directory. Reference workers reconnect by themselves;
 * jobs that were running on the dead process come back once their locks expire (BullMQ's
 * stalled check, run by the new process); every accepted request ends once.
 */
import t from 'tap'
import { WorkerClient } from '../../src/clients/worker-client.js'
import { createDemoBackend } from '../../src/clients/backends/demo.js'
import { checkOutcome, generationEntries, writeFigures } from '../helpers/faults.js'
import { api, eventually, registerUser, sleep, startTestRedis } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const STREAMS = 50
const WORKERS = 10
const THREADS = 5
const WORDS = 60

t.test('broker kill -9 in the middle of 50 streams: every request ends once, the ledger audits clean', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')

  let jobsReceived = 0
  const workers: WorkerClient[] = []
  for (let i = 0; i < WORKERS; i++) {
    const worker = new WorkerClient({
      url: broker.url, key: owner.key, name: `w${i}`, models: ['demo/tiny'], maxLength: 512, maxContextLength: 4096,
      threads: THREADS, backend: createDemoBackend({ delayMs: 50 }),
    })
    worker.on('error', () => { /* refused sockets while the broker is down: it reconnects */ })
    worker.on('job', () => { jobsReceived++ })
    workers.push(worker)
  }
  t.teardown(() => Promise.all(workers.map((w) => w.stop())))
  await Promise.all(workers.map((w) => w.start()))

  // Submitted ten at a time, so that the streams overlap even on a slow machine.
  const ids: string[] = []
  for (let i = 0; i < STREAMS; i += 10) {
    const answers = await Promise.all(Array.from({ length: 10 }, (_, j) =>
      api(broker.url, 'POST', '/v1/generate', { key: requester.key, body: { prompt: `stream ${i + j}`, models: ['demo/tiny'], max_length: WORDS } })))
    for (const answer of answers) {
      if (answer.status !== 202) t.fail(`submission refused: ${answer.status} ${JSON.stringify(answer.body)}`)
      else ids.push(answer.body.id)
    }
  }
  t.equal(ids.length, STREAMS, 'all streams accepted')
  // Kill once the streams are running (each takes WORDS x 50 ms at least).
  await eventually(() => jobsReceived >= STREAMS, 60_000, 'the streams to start')
  await sleep(300)
  const settledBefore = [...generationEntries(broker.dbFile).keys()].filter((id) => ids.includes(id)).length
  const runningAtKill = jobsReceived - settledBefore
  await broker.kill()
  await broker.restart()

  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, dbFile: broker.dbFile })
  t.equal(outcome.done, STREAMS, 'every stream finished done')
  const rerun = jobsReceived - STREAMS
  t.ok(rerun >= 0, `jobs handed out again after the restart: ${rerun}`)
  writeFigures({
    name: 'broker-kill', file: 'test/faults/broker-kill.test.ts',
    injects: 'SIGKILL of the broker process mid-stream, restart on the same port and data dir',
    faults: 1, ...outcome,
    notes: `${settledBefore} settled before the kill, ${runningAtKill} jobs handed out and unsettled at the kill, ${rerun} dispatches after the restart`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
