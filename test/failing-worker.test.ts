import t from 'tap'
import { registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'

t.test('a failed attempt goes to another worker, the client hears why, and a worker failing in a row is paused', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl } = await startBroker(t, { redis })
  const owner = await registerUser(wsUrl.replace(/^ws/, 'http'), 'owner')
  const broken = await rawWorker(wsUrl, owner.key, { name: 'broken' })
  const c = await client(wsUrl)
  t.teardown(() => { broken.close(); c.close() })

  // Only the broken worker is online: the failed request comes back to it (nobody else can serve it).
  const lonely = await submit(c, { max_length: 4 })
  const first = await broken.next('job')
  t.equal(first.forRequest, lonely)
  broken.send({ type: 'fail', job: first.job, reason: 'backend down: connection refused' })
  const queued = await c.next((f) => f.type === 'queued' && f.restarting === true && f.request === lonely)
  t.equal(queued.reason, 'failed attempt: backend down: connection refused', 'the client hears the failure apart from a lost worker')
  const again = await broken.next('job')
  t.equal(again.forRequest, lonely, 'with no other worker, the same one gets it again')
  const restarted = await c.next((f) => f.type === 'restarted' && f.request === lonely)
  t.equal(restarted.reason, 'failed attempt: backend down: connection refused', 'restarted carries the reason too')

  // A healthy worker arrives: what the broken one fails goes to it, never back to the broken one.
  const healthy = await rawWorker(wsUrl, owner.key, { name: 'healthy' })
  t.teardown(() => healthy.close())
  t.not(again.job, first.job, 'each attempt has its own job id')
  broken.send({ type: 'fail', job: again.job, reason: 'backend down' })
  const moved = await healthy.next('job')
  t.equal(moved.forRequest, lonely, 'the failed request goes to the healthy worker')
  serve(healthy, moved.job, ['ok'])
  await c.next((f) => f.type === 'done' && f.request === lonely)

  // Alone again, the broken worker fails a third time in a row: it is paused, and told so.
  healthy.close()
  await healthy.closed
  const third = await submit(c, { max_length: 4 })
  const offered = await broken.next((f) => f.type === 'job' && f.forRequest === third)
  broken.send({ type: 'fail', job: offered.job, reason: 'still down' })
  const paused = await broken.next('paused')
  t.same([paused.failures, paused.seconds, paused.reason], [3, 30, 'still down'], 'three failures in a row: 30 s without jobs')
  // Paused, it is offered nothing, not even the request nobody else can serve yet.
  await new Promise((r) => setTimeout(r, 300))
  t.equal(broken.frames.filter((f) => f.type === 'job' && f.forRequest === third).length, 1, 'the paused worker was not offered it again')
  const rescuer = await rawWorker(wsUrl, owner.key, { name: 'rescuer' })
  t.teardown(() => rescuer.close())
  const rescued = await rescuer.next((f) => f.type === 'job' && f.forRequest === third)
  t.equal(rescued.attempt, 2)
  serve(rescuer, rescued.job, ['ok'])
  const done = await c.next((f) => (f.type === 'done' || f.type === 'failed') && f.request === third)
  t.equal(done.type, 'done', 'no request failed while a healthy worker served the model')
})

t.test('maintenance: no new jobs until it is turned off', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl } = await startBroker(t, { redis })
  const owner = await registerUser(wsUrl.replace(/^ws/, 'http'), 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'resting' })
  const c = await client(wsUrl)
  t.teardown(() => { worker.close(); c.close() })
  worker.send({ type: 'maintenance', on: true })
  await new Promise((r) => setTimeout(r, 100))
  const id = await submit(c, { max_length: 4 })
  await new Promise((r) => setTimeout(r, 500))
  t.notOk(worker.frames.some((f) => f.type === 'job'), 'no job during maintenance')
  worker.send({ type: 'maintenance', on: false })
  const offer = await worker.next('job')
  t.equal(offer.forRequest, id)
  serve(worker, offer.job, ['ok'])
  await c.next((f) => f.type === 'done' && f.request === id)
})
