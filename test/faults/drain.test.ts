/**
 * Fault: the broker process gets SIGTERM while streams run. It drains: no new requests or
 * sockets, running jobs finish and their watchers get every chunk, everyone else is closed
 * with 1012 (reconnect elsewhere) at once; at DRAIN_SECONDS what is left goes back to its
 * queue; a second signal exits at once.
 */
import t from 'tap'
import { checkOutcome, writeFigures } from '../helpers/faults.js'
import { startFleet, submitMany } from '../helpers/fleet.js'
import { api, eventually, registerUser, sleep, startTestRedis } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'
import { connect } from '../helpers/ws.js'

const STREAMS = 10

t.test('SIGTERM during 10 running streams: all 10 finish without a restart, the rest is told to reconnect', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url, env: { DRAIN_SECONDS: '60' } })
  const owner = await registerUser(broker.url, 'owner')
  const requester = await registerUser(broker.url, 'requester')
  // 12 slots for 10 streams of 40 words x 100 ms: every stream runs for 4 s or more.
  const fleet = await startFleet(t, broker.url, owner.key, { count: 6, threads: 2, delayMs: 100 })
  const { ids, refused } = await submitMany(broker.url, requester.key, STREAMS, { prefix: 'drain', words: 40 })
  t.same(refused, [], 'all streams accepted')
  await eventually(() => fleet.jobs >= STREAMS, 60_000, 'the streams to start')

  const ws = broker.url.replace('http', 'ws')
  const watcher = await connect(`${ws}/v1/client`, requester.key)
  await watcher.next('welcome')
  watcher.send({ type: 'attach', id: 'a', request: ids[0] })
  t.equal((await watcher.next('attached', 10_000)).state, 'running', 'the watched stream is running')
  const idle = await connect(`${ws}/v1/client`, requester.key)
  await idle.next('welcome')

  broker.send('SIGTERM')
  const idleClosed = await Promise.race([idle.closed, sleep(15_000).then(() => null)])
  t.equal(idleClosed?.code, 1012, 'a client with nothing running here is told at once to reconnect elsewhere (1012)')
  const health = await api(broker.url, 'GET', '/health')
  t.equal(health.status, 503, 'health answers 503 while draining')
  t.equal(health.body.status, 'draining')
  const late = await api(broker.url, 'POST', '/v1/generate', { key: requester.key, body: { prompt: 'too late', models: ['demo/tiny'], max_length: 5 } })
  t.equal(late.status, 503, 'a new request during the drain is refused')
  t.equal(late.body.error?.code, 'unavailable', 'with the code unavailable')
  const refusal = await connect(`${ws}/v1/client`, requester.key).then(() => null, (error: { status?: number }) => error)
  t.equal(refusal?.status, 503, 'a new socket during the drain is refused with 503')

  const done = await watcher.next((f) => f.type === 'done' && f.request === ids[0], 60_000)
  t.ok(done.text.split(' ').length >= 40, 'the watcher got the whole text')
  t.notOk(watcher.frames.some((f) => f.type === 'restarted' || f.type === 'queued'), 'the watched stream never went back to the queue')
  t.equal((await watcher.closed).code, 1012, 'once its stream ended, the watcher is told to reconnect elsewhere')
  t.equal(await broker.exited(), 0, 'the broker exits 0 once drained')

  await broker.restart()
  const outcome = await checkOutcome(t, { url: broker.url, key: requester.key, ids, database: broker.database })
  t.equal(outcome.done, STREAMS, 'every stream finished done')
  t.same([...fleet.dispatches.values()].filter((n) => n !== 1), [], 'no stream was dispatched twice: none ran again')
  writeFigures({
    name: 'drain', file: 'test/faults/drain.test.ts', injects: 'SIGTERM while 10 streams run (DRAIN_SECONDS=60), then a restart',
    faults: 1, ...outcome, notes: `${fleet.jobs} dispatches for ${STREAMS} streams`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})

