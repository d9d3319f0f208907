/**
 * Suspicion: a worker whose deliveries keep hitting the speed bound is flagged for
 * moderators (the worker row's `flaggedAt`, a Prometheus counter, a `worker_flagged` event
 * on the core's flag events), not silently paid. An honest worker beside it is not.
 */
import t from 'tap'
import type { FlaggedWorker } from '../../src/core/job-runner.js'
import { api, grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, serve, submit } from '../helpers/pipeline.js'
import { MID, settledOf, streamAt } from '../helpers/farm.js'

t.test('a worker that keeps answering faster than its model can is flagged once, with an event and a metric', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const farmer = await registerUser(url, 'farmer')
  const volunteer = await registerUser(url, 'volunteer')
  const payer = await registerUser(url, 'payer')
  await grant(broker, payer.id, 10_000)
  const events: FlaggedWorker[] = []
  broker.core.flags.on('worker_flagged', (event) => events.push(event))
  const junk = await rawWorker(wsUrl, farmer.key, { name: 'instant', models: [MID], max_length: 512, max_context_length: 4096 })
  const submitter = await client(wsUrl, payer.key)
  t.teardown(() => { junk.close(); submitter.close() })

  for (let i = 0; i < 5; i++) {
    const request = await submit(submitter, { prompt: 'hello', models: [MID], max_length: 512, max_context_length: 1024 })
    const job = (await junk.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    serve(junk, job, ['z'.repeat(2048)])
    await settledOf(junk, job)
    t.equal(events.length, i < 2 ? 0 : 1, `after ${i + 1} instant answers: ${i < 2 ? 'not yet' : 'flagged, once'}`)
  }
  t.match(events[0], { name: 'instant', ownerId: farmer.id, model: MID, counted: 512 })
  t.ok(events[0].billed < events[0].counted, `billed ${events[0].billed} of ${events[0].counted} counted tokens in ${events[0].elapsedMs} ms`)
  const row = await broker.services.store.workers.byName('instant')
  t.match(row, { boundedJobs: 5, jobs: 5 })
  t.ok(row?.flaggedAt, 'the worker row says when it was flagged')
  const metrics = (await api(url, 'GET', '/metrics')).body as string
  t.match(metrics, /^horde_workers_flagged_total 1$/m)
  t.match(metrics, /^horde_bounded_deliveries_total 5$/m)

  junk.close()
  const honest = await rawWorker(wsUrl, volunteer.key, { name: 'steady', models: [MID], max_length: 512, max_context_length: 4096 })
  t.teardown(() => honest.close())
  for (let i = 0; i < 3; i++) {
    const request = await submit(submitter, { prompt: 'hello', models: [MID], max_length: 512, max_context_length: 1024 })
    const job = (await honest.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    await streamAt(honest, job, 'w'.repeat(64), 50)
    await settledOf(honest, job)
  }
  t.match(await broker.services.store.workers.byName('steady'), { boundedJobs: 0, flaggedAt: null, jobs: 3 }, 'an honest worker is not flagged')
  t.equal(events.length, 1)
  t.same((await ledgerInvariant(broker)).problems, [])
})
