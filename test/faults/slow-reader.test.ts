/**
 * Fault: a client stops reading its socket while its request streams megabytes. Its send
 * buffer is capped (SEND_BUFFER_BYTES) and the broker closes it with 4002 (slow consumer);
 * the other clients' streams, relayed by the same process at the same time, arrive whole;
 * the slow client's job still finishes and is billed once; the ledger audit passes.
 */
import t from 'tap'
import { checkOutcome, writeFigures } from '../helpers/faults.js'
import { eventually, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, submit } from '../helpers/pipeline.js'

const FAST = 3
const CHUNKS = 1000

t.test('a client that stops reading is closed 4002; other streams are whole; its job is billed once', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url, database } = await startBroker(t, { redis, env: { SEND_BUFFER_BYTES: '65536', MAX_FRAME_BYTES: '65536', MAX_JOB_TEXT_CHARS: '100000000' } })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w', threads: FAST + 1, max_length: 4096 })
  t.teardown(() => worker.close())
  const slow = await client(wsUrl, requester.key)
  const fast = await Promise.all(Array.from({ length: FAST }, () => client(wsUrl, requester.key)))
  t.teardown(() => { slow.close(); for (const peer of fast) peer.close() })

  const slowId = await submit(slow, { max_length: 4096 })
  const fastIds = await Promise.all(fast.map((peer) => submit(peer, { max_length: 4096 })))
  const jobs = await Promise.all(Array.from({ length: FAST + 1 }, () => worker.next('job', 30_000)))
  t.same(jobs.map((j) => j.forRequest).sort(), [slowId, ...fastIds].sort(), 'all four jobs on the worker')
  const jobOf = (request: string): string => jobs.find((j) => j.forRequest === request).job
  const slowJob = jobOf(slowId)
  const fastJobs = fastIds.map(jobOf)
  ;(slow.ws as any)._socket.pause() // stop reading: the kernel buffers fill, then the broker's

  const piece = 'y'.repeat(8000) // 8 MB to the slow reader: far past kernel buffers and the 64 KiB cap
  for (let seq = 0; seq < CHUNKS; seq++) {
    worker.send({ type: 'chunk', job: slowJob, seq, text: piece })
    for (const job of fastJobs) worker.send({ type: 'chunk', job, seq, text: 'z' })
  }
  worker.send({ type: 'done', job: slowJob, chunks: CHUNKS })
  for (const job of fastJobs) worker.send({ type: 'done', job, chunks: CHUNKS })

  // The broker gives a closed reader 2 s to take its close frame before it drops the socket:
  // the slow reader reads again as soon as the broker has closed it, however long the other
  // streams take on a loaded machine.
  await eventually(() => [...broker.services.hub.connections].some((c) => c.closed), 60_000, 'the broker to close the slow reader')
  ;(slow.ws as any)._socket.resume()

  for (const [i, peer] of fast.entries()) {
    const done = await peer.next((f) => f.type === 'done' && f.request === fastIds[i], 60_000)
    t.equal(done.text, 'z'.repeat(CHUNKS), `fast reader ${i} got its whole stream`)
    const chunks = peer.frames.filter((f) => f.type === 'chunk' && f.request === fastIds[i])
    t.same(chunks.map((c) => c.seq), Array.from({ length: CHUNKS }, (_, s) => s), `fast reader ${i} got every chunk, in order`)
  }
  const closed = await slow.closed
  t.equal(closed.code, 4002, 'the slow reader was closed as a slow consumer')

  const outcome = await checkOutcome(t, { url, key: requester.key, ids: [slowId, ...fastIds], database })
  t.equal(outcome.done, FAST + 1, 'the slow reader\'s job finished too')
  writeFigures({
    name: 'slow-reader', file: 'test/faults/slow-reader.test.ts',
    injects: `one client stops reading during an 8 MB stream (cap 64 KiB), ${FAST} others stream at the same time`,
    faults: 1, ...outcome,
    notes: `slow reader closed with ${closed.code}; ${FAST} fast readers got ${CHUNKS}/${CHUNKS} chunks each`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
