import t from 'tap'
import { api, balanceOf, eventually, grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, submit } from './helpers/pipeline.js'

t.test('cancel while queued: over the socket and over REST; nothing is charged', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const requester = await registerUser(url, 'requester')
  await grant(broker, requester.id, 10)
  const user = await client(wsUrl, requester.key)
  t.teardown(() => user.close())
  const id = await submit(user, { models: ['nobody/yet'] })
  user.send({ type: 'cancel', id: 'c1', request: id })
  const ack = await user.next('cancel_accepted')
  t.equal(ack.id, 'c1')
  const cancelled = await user.next('cancelled')
  t.equal(cancelled.request, id)
  t.equal(cancelled.kudos, 0)

  const rest = await api(url, 'POST', '/v1/generate', { key: requester.key, body: { prompt: 'p', models: ['nobody/yet'] } })
  const del = await api(url, 'DELETE', `/v1/generate/${rest.body.id}`, { key: requester.key })
  t.equal(del.status, 200)
  t.equal(del.body.state, 'cancelled')
  const again = await api(url, 'DELETE', `/v1/generate/${rest.body.id}`, { key: requester.key })
  t.equal(again.status, 409)
  t.equal(again.body.error.code, 'not_cancellable')
  const stranger = await api(url, 'DELETE', `/v1/generate/${id}`)
  t.equal(stranger.status, 404, 'someone else cannot cancel or see it')

  // A worker arriving later gets neither.
  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w', models: ['nobody/yet'] })
  t.teardown(() => worker.close())
  await new Promise((r) => setTimeout(r, 200))
  t.equal(worker.frames.filter((f) => f.type === 'job').length, 0)
  t.equal(await balanceOf(broker, requester.id), 10)
})

t.test('cancel while running: the worker is told to stop, the requester pays for what was delivered', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w' })
  t.teardown(() => worker.close())
  const user = await client(wsUrl, requester.key)
  t.teardown(() => user.close())
  const id = await submit(user, { max_length: 100 })
  const job = await worker.next('job')
  worker.send({ type: 'chunk', job: job.job, seq: 0, text: 'abcdefgh' })
  await user.next('chunk')
  user.send({ type: 'cancel', id: 'c', request: id })
  const stop = await worker.next('cancel')
  t.equal(stop.forRequest, id, 'the worker is told to stop')
  const cancelled = await user.next('cancelled')
  t.equal(cancelled.tokens, 2, 'pays for 8 characters = 2 tokens')
  t.ok(cancelled.kudos > 0)
  t.equal(await balanceOf(broker, owner.id), cancelled.kudos)
  worker.send({ type: 'chunk', job: job.job, seq: 1, text: 'late' })
  t.equal((await worker.next('error')).code, 'not_your_job', 'chunks after the cancel are refused')
  const status = await api(url, 'GET', `/v1/generate/${id}`, { key: requester.key })
  t.equal(status.body.state, 'cancelled')
  t.equal(status.body.text, 'abcdefgh')
  const inv = await ledgerInvariant(broker)
  t.equal(inv.sumBalances, inv.minted)
})

t.test('a request nobody takes expires with a clear message', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl } = await startBroker(t, { redis, env: { REQUEST_TTL_SECONDS: '1' } })
  const user = await client(wsUrl)
  t.teardown(() => user.close())
  const id = await submit(user, { models: ['nobody/ever'] })
  await new Promise((r) => setTimeout(r, 1100))
  await broker.core.recovery.expireOld()
  const failed = await user.next('failed')
  t.equal(failed.request, id)
  t.equal(failed.code, 'expired')
  t.match(failed.message, /within 1 s/)
})

t.test('cancel while a worker is being handed the job: it is never offered, nothing is charged', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  await grant(broker, requester.id, 10)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w' })
  t.teardown(() => worker.close())
  // Hold dispatch between taking the job from the queue and offering it: the moment when the
  // job is neither waiting (nothing to remove) nor running (no worker to stop).
  const requests = broker.services.store.requests
  const state = requests.state
  let reached!: () => void
  const atGate = new Promise<void>((resolve) => (reached = resolve))
  let open!: () => void
  const gate = new Promise<void>((resolve) => (open = resolve))
  requests.state = async (id) => {
    const row = await state.call(requests, id)
    reached()
    await gate
    return row
  }
  t.teardown(() => { requests.state = state })
  // With an idempotency key the request is recorded before it is queued (no fast path), so
  // delivery reads its state: that read is the gate.
  const submitted = await api(url, 'POST', '/v1/generate', { key: requester.key, body: { prompt: 'p', max_length: 20 }, headers: { 'idempotency-key': 'gated' } })
  const id = submitted.body.id
  await atGate
  t.ok(broker.jobQueue.isHeld(id), 'the job is taken from the queue, not yet offered')
  const del = await api(url, 'DELETE', `/v1/generate/${id}`, { key: requester.key })
  t.equal(del.status, 200)
  open()
  const end = await eventually(async () => {
    const view = (await api(url, 'GET', `/v1/generate/${id}`, { key: requester.key })).body
    return ['done', 'cancelled', 'failed'].includes(view.state) ? view : undefined
  }, 10_000, 'the request to end')
  t.equal(end.state, 'cancelled')
  t.equal(end.tokens, 0)
  t.notOk(worker.frames.some((f) => f.type === 'job' && f.forRequest === id), 'the worker was never offered it')
  t.equal(await balanceOf(broker, requester.id), 10, 'nothing charged')
  t.equal(broker.core.runner.size, 0, 'nothing left running')
})
