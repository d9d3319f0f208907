import t from 'tap'
import WebSocket from 'ws'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { client } from './helpers/pipeline.js'

t.test('a submission retried with its idempotency key is accepted once', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const user = await registerUser(url, 'user')
  const body = { prompt: 'once only', models: ['m/none'] }
  const count = () => broker.services.store.requests.count()

  const first = await api(url, 'POST', '/v1/generate', { key: user.key, body, headers: { 'idempotency-key': 'k1' } })
  t.equal(first.status, 202)
  const again = await api(url, 'POST', '/v1/generate', { key: user.key, body, headers: { 'idempotency-key': 'k1' } })
  t.equal(again.status, 200)
  t.equal(again.body.replayed, true)
  t.equal(again.body.id, first.body.id, 'the same request')
  const conflict = await api(url, 'POST', '/v1/generate', { key: user.key, body: { ...body, prompt: 'other' }, headers: { 'idempotency-key': 'k1' } })
  t.equal(conflict.status, 409)
  t.equal(conflict.body.error.code, 'idempotency_conflict')
  t.equal(await count(), 1, 'one request recorded')

  const socket = await client(wsUrl, user.key)
  t.teardown(() => socket.close())
  socket.send({ type: 'submit', id: 'w1', ...body, idempotency_key: 'k1' })
  const accepted = await socket.next('accepted')
  t.equal(accepted.request, first.body.id, 'the socket door shares the keys')
  t.equal(accepted.replayed, true)
  const attached = await socket.next('attached')
  t.equal(attached.state, 'waiting')
  t.equal(await count(), 1)

  // Anonymous keys are per address: the same key from another address is another request.
  const anon1 = await api(url, 'POST', '/v1/generate', { body, headers: { 'idempotency-key': 'shared' } })
  const other = new WebSocket(`${wsUrl}/v1/client`, { localAddress: '127.0.0.2' })
  t.teardown(() => other.close())
  const frames: any[] = []
  other.on('message', (d) => frames.push(JSON.parse(String(d))))
  await new Promise((r) => other.once('open', r))
  other.send(JSON.stringify({ type: 'submit', id: 'x', ...body, idempotency_key: 'shared' }))
  while (!frames.some((f) => f.type === 'accepted' || f.type === 'error')) await new Promise((r) => setTimeout(r, 10))
  const elsewhere = frames.find((f) => f.type === 'accepted')
  t.not(elsewhere.request, anon1.body.id, 'another anonymous client cannot reach the first one\'s request')
  t.notOk(elsewhere.replayed)
  t.equal(await count(), 3)
})
