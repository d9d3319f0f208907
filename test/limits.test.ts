import t from 'tap'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { connect } from './helpers/ws.js'
import { rawWorker, serve } from './helpers/pipeline.js'

t.test('per-user and anonymous-per-address caps refuse with a code and lose no accepted request', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis, env: { MAX_ACTIVE_PER_USER: '2', MAX_ACTIVE_ANON_PER_IP: '1', SUBMITS_PER_SECOND: '100' } })
  const user = await registerUser(url, 'user')
  const body = { prompt: 'p', models: ['later/model'] }
  const a = await api(url, 'POST', '/v1/generate', { key: user.key, body })
  const b = await api(url, 'POST', '/v1/generate', { key: user.key, body })
  const c = await api(url, 'POST', '/v1/generate', { key: user.key, body })
  t.equal(a.status, 202)
  t.equal(b.status, 202)
  t.equal(c.status, 429)
  t.equal(c.body.error.code, 'too_many_active')

  const anonA = await api(url, 'POST', '/v1/generate', { body })
  const anonB = await api(url, 'POST', '/v1/generate', { body })
  t.equal(anonA.status, 202)
  t.equal(anonB.body.error.code, 'too_many_active', 'one anonymous client cannot fill the queue')
  // Another address is another anonymous client.
  const { default: WebSocket } = await import('ws')
  const fromElsewhere = new WebSocket(`${wsUrl}/v1/client`, { localAddress: '127.0.0.2' })
  t.teardown(() => fromElsewhere.close())
  const frames: any[] = []
  fromElsewhere.on('message', (d) => frames.push(JSON.parse(String(d))))
  await new Promise((r) => fromElsewhere.once('open', r))
  fromElsewhere.send(JSON.stringify({ type: 'submit', id: 'x', ...body }))
  await new Promise((r) => setTimeout(r, 300))
  t.ok(frames.some((f) => f.type === 'accepted'), 'an anonymous client at another address is accepted')

  const refused = { n: await broker.services.store.requests.count() }
  t.equal(refused.n, 4, 'refused submissions were never recorded')
  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w', models: ['later/model'], threads: 4 })
  t.teardown(() => worker.close())
  const jobs = [await worker.next('job'), await worker.next('job'), await worker.next('job'), await worker.next('job')]
  t.same(jobs.map((j) => j.forRequest).sort(), [a.body.id, b.body.id, anonA.body.id, frames.find((f) => f.type === 'accepted').request].sort(), 'every accepted request runs')
  for (const job of jobs) serve(worker, job.job, ['.'])
  for (let i = 0; i < 4; i++) await worker.next('settled')
  const after = await api(url, 'POST', '/v1/generate', { key: user.key, body })
  t.equal(after.status, 202, 'once they finished, the user may submit again')
})

t.test('submissions per second are limited over REST (shared in Redis) and over the socket', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl, url } = await startBroker(t, { redis, env: { SUBMITS_PER_SECOND: '3', MAX_ACTIVE_PER_USER: '100' } })
  const user = await registerUser(url, 'user')
  const answers = await Promise.all(Array.from({ length: 6 }, () => api(url, 'POST', '/v1/generate', { key: user.key, body: { prompt: 'p' } })))
  const statuses = answers.map((a) => a.status)
  t.equal(statuses.filter((s) => s === 202).length, 3, `three accepted: ${statuses}`)
  t.ok(answers.filter((a) => a.status === 429).every((a) => a.body.error.code === 'too_many_requests'))
  const socket = await connect(`${wsUrl}/v1/client`, user.key)
  t.teardown(() => socket.close())
  for (let i = 0; i < 6; i++) socket.send({ type: 'submit', id: `s${i}`, prompt: 'p' })
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => socket.next((f) => f.id === `s${i}` && (f.type === 'accepted' || f.type === 'error'))))
  t.equal(results.filter((r) => r.type === 'error' && r.code === 'too_many_requests').length, 3, 'three refused on the socket')
})
