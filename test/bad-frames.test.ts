import t from 'tap'
import { registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'

t.test('malformed frames get coded errors; other sessions are not affected', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl, url } = await startBroker(t, { redis, env: { MAX_FRAME_BYTES: '4096' } })
  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w' })
  t.teardown(() => worker.close())
  const good = await client(wsUrl)
  const bad = await client(wsUrl)
  t.teardown(() => { good.close(); bad.close() })

  const cases: Array<[string | Buffer, string, boolean?]> = [
    ['{not json', 'invalid_json'],
    ['[1,2,3]', 'validation_failed'],
    ['"just a string"', 'validation_failed'],
    ['{"no":"type"}', 'validation_failed'],
    ['{"type":"teleport","id":"x"}', 'unknown_type'],
    ['{"type":"submit","id":"x","prompt":42}', 'validation_failed'],
    ['{"type":"submit","id":"x","prompt":"p","max_length":1e400}', 'validation_failed'],
    ['{"type":"submit","id":"x","prompt":"p","max_length":-1}', 'validation_failed'],
    ['{"type":"submit","prompt":"p"}', 'validation_failed'],
    ['{"type":"cancel","id":"x","request":"nope"}', 'unknown_request'],
    [Buffer.from([1, 2, 3]), 'bad_request', true],
    ['{"type":"submit","id":"x","prompt":"p","params":' + '{"a":'.repeat(50) + '1' + '}'.repeat(50) + '}', 'validation_failed'],
  ]
  for (const [frame, code, binary] of cases) {
    bad.sendRaw(frame, binary)
    const error = await bad.next('error')
    t.equal(error.code, code, `${String(frame).slice(0, 50)} -> ${code}`)
    t.type(error.message, 'string')
  }
  worker.send({ type: 'chunk' })
  t.equal((await worker.next('error')).code, 'validation_failed')
  worker.send({ type: 'announce', name: 'again', models: ['x'], max_length: 1, max_context_length: 1 })
  t.equal((await worker.next('error')).code, 'bad_request', 'a second announce is refused')

  const id = await submit(good, {})
  const job = await worker.next('job')
  serve(worker, job.job, ['still ', 'fine'])
  t.equal((await good.next('done')).text, 'still fine', 'a legitimate session keeps working')
  t.equal(id, job.forRequest)

  bad.sendRaw(JSON.stringify({ type: 'submit', id: 'big', prompt: 'x'.repeat(5000) }))
  t.equal((await bad.closed).code, 1009, 'an oversized frame closes with 1009')
})

t.test('too many bad frames close the socket with a protocol-violation code', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl } = await startBroker(t, { redis })
  const bad = await client(wsUrl)
  for (let i = 0; i < 150; i++) bad.sendRaw('nope')
  t.equal((await bad.closed).code, 4400)
})

t.test('a client that stops reading is cut off; other streams go on; the job is billed once', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis, env: { SEND_BUFFER_BYTES: '65536', MAX_FRAME_BYTES: '65536', MAX_JOB_TEXT_CHARS: '100000000' } })
  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w', threads: 2, max_length: 4096 })
  t.teardown(() => worker.close())
  const slow = await client(wsUrl)
  const fast = await client(wsUrl)
  t.teardown(() => { slow.close(); fast.close() })
  const slowId = await submit(slow, { max_length: 4096 })
  const fastId = await submit(fast, { max_length: 4096 })
  const jobs = [await worker.next('job'), await worker.next('job')]
  t.same(jobs.map((j) => j.forRequest).sort(), [slowId, fastId].sort())
  const slowJob = jobs.find((j) => j.forRequest === slowId).job
  const fastJob = jobs.find((j) => j.forRequest === fastId).job
  ;(slow.ws as any)._socket.pause() // stop reading

  const piece = 'y'.repeat(8000)
  const count = 1000 // 8 MB to the slow reader: far past kernel buffers and the 64 KiB cap
  for (let seq = 0; seq < count; seq++) {
    worker.send({ type: 'chunk', job: slowJob, seq, text: piece })
    worker.send({ type: 'chunk', job: fastJob, seq, text: 'z' })
  }
  worker.send({ type: 'done', job: slowJob, chunks: count })
  worker.send({ type: 'done', job: fastJob, chunks: count })
  const done = await fast.next('done', 20_000)
  t.equal(done.text, 'z'.repeat(count), 'the fast reader got its whole stream')
  ;(slow.ws as any)._socket.resume()
  const closed = await slow.closed
  t.equal(closed.code, 4002, 'the slow reader was closed as a slow consumer')
  const settled = { n: await broker.services.store.audit.countEntries('generation', slowId) }
  t.equal(settled.n, 1, 'its job was still settled, once')
})
