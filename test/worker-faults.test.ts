import t from 'tap'
import { api, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'

for (const how of ['socket destroyed', 'silent but open'] as const) {
  t.test(`a worker lost mid-job (${how}): the job finishes on another worker, one clean text, paid once`, async (t) => {
    const redis = await startTestRedis(t)
    const { broker, wsUrl, url } = await startBroker(t, { redis, env: { HEARTBEAT_SECONDS: '0.5' } })
    const owner = await registerUser(url, 'owner')
    const requester = await registerUser(url, 'requester')
    await grant(broker, requester.id, 50)
    const doomed = await rawWorker(wsUrl, owner.key, { name: 'doomed' }, { autoPong: how === 'socket destroyed' })
    const user = await client(wsUrl, requester.key)
    t.teardown(() => user.close())
    const id = await submit(user, { max_length: 20 })
    const first = await doomed.next('job')
    t.equal(first.attempt, 1)
    for (let seq = 0; seq < 3; seq++) doomed.send({ type: 'chunk', job: first.job, seq, text: `old${seq}` })
    for (let i = 0; i < 3; i++) await user.next('chunk')

    const lostAt = Date.now()
    if (how === 'socket destroyed') doomed.ws.terminate()
    // Silent: the socket stays open but never answers a ping.
    const rescuer = await rawWorker(wsUrl, owner.key, { name: 'rescuer' })
    t.teardown(() => rescuer.close())
    const second = await rescuer.next('job', 5000)
    const waited = Date.now() - lostAt
    t.equal(second.forRequest, id)
    t.equal(second.attempt, 2)
    t.not(second.job, first.job, 'the second attempt has a job id of its own')
    if (how === 'silent but open') t.ok(waited <= 2 * 500 + 250, `re-dispatched within two heartbeats (+ slack): ${waited} ms`)
    const restarted = await user.next('restarted')
    t.equal(restarted.attempt, 2)

    // A late chunk from the dead attempt, sent on the old socket if it is still open, is refused.
    if (how === 'silent but open') {
      const closed = await doomed.closed
      t.equal(closed.code, 1006, 'the silent worker was terminated')
    }
    serve(rescuer, second.job, ['new ', 'text'])
    const done = await user.next('done')
    t.equal(done.text, 'new text', 'only the second attempt\'s text')
    const chunks = user.frames.filter((f) => f.type === 'chunk')
    const afterRestart = chunks.slice(chunks.findIndex((c) => c.attempt === 2))
    t.same(afterRestart.map((c) => c.text), ['new ', 'text'])
    t.ok(chunks.slice(0, 3).every((c) => c.attempt === 1), 'earlier chunks are marked with their attempt')
    const entries = { n: await broker.services.store.audit.countEntries('generation', id) }
    t.equal(entries.n, 1, 'settled once')
    const status = await api(url, 'GET', `/v1/generate/${id}`, { key: requester.key })
    t.equal(status.body.worker, 'rescuer')
  })
}

t.test('a chunk for a job the worker does not hold, or out of sequence, is refused with a code', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w' })
  const other = await rawWorker(wsUrl, owner.key, { name: 'other' })
  t.teardown(() => { worker.close(); other.close() })
  const user = await client(wsUrl)
  t.teardown(() => user.close())
  const id = await submit(user, {})
  const job = await Promise.race([worker.next('job'), other.next('job')])
  const holder = worker.frames.some((f) => f.type === 'job') ? worker : other
  const stranger = holder === worker ? other : worker
  stranger.send({ type: 'chunk', job: job.job, seq: 0, text: 'stolen' })
  t.equal((await stranger.next('error')).code, 'not_your_job', 'another worker\'s job id')
  holder.send({ type: 'chunk', job: id, seq: 0, text: 'by request id' })
  t.equal((await holder.next('error')).code, 'not_your_job', 'a request id is not a job id, even for the holder')
  holder.send({ type: 'chunk', job: job.job, seq: 1, text: 'gap' })
  t.equal((await holder.next('error')).code, 'bad_sequence')
  holder.send({ type: 'chunk', job: job.job, seq: 0, text: 'ok' })
  holder.send({ type: 'done', job: job.job, chunks: 5 })
  t.equal((await holder.next('error')).code, 'bad_sequence', 'done with a wrong chunk count')
  holder.send({ type: 'done', job: job.job, chunks: 1 })
  const done = await user.next('done')
  t.equal(done.text, 'ok', 'the refused chunks were never relayed')
})

t.test('a worker name belongs to its owner; a reconnect with the same name replaces the old session', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl, url } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const mallory = await registerUser(url, 'mallory')
  const first = await rawWorker(wsUrl, alice.key, { name: 'shared-name' })
  const second = await rawWorker(wsUrl, alice.key, { name: 'shared-name' })
  t.teardown(() => second.close())
  t.equal((await first.closed).code, 4409, 'the old session is closed as replaced')
  const { connect } = await import('./helpers/ws.js')
  const thief = await connect(`${wsUrl}/v1/worker`, mallory.key)
  await thief.next('welcome')
  thief.send({ type: 'announce', name: 'shared-name', models: ['x'], max_length: 10, max_context_length: 10 })
  t.equal((await thief.next('error')).code, 'worker_name_taken')
  t.equal((await thief.closed).code, 4403)
  await t.rejects(connect(`${wsUrl}/v1/worker`), { message: 'upgrade refused: 401' }, 'anonymous workers are refused on upgrade')
  await t.rejects(connect(`${wsUrl}/v1/worker`, 'hb_bad'), { message: 'upgrade refused: 401' }, 'a wrong key is refused on upgrade')
})
