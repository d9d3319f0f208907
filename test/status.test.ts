import t from 'tap'
import { api, registerUser, setBalance, sleep, startBroker, startTestRedis } from './helpers/harness.js'
import { PLAUSIBLE_MS, client, rawWorker, serve, submit } from './helpers/pipeline.js'

t.test('GET /v1/status shows workers, waiting per model, throughput and top holders', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  await setBalance(broker, owner.id, 42)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'status-w', models: ['m/one'] })
  const user = await client(wsUrl)
  t.teardown(() => { worker.close(); user.close() })
  const id = await submit(user, { models: ['m/one'] })
  const job = await worker.next('job')
  // Billed tokens are bounded by the time the job ran (docs/security.md): an instant answer is billed less.
  await sleep(PLAUSIBLE_MS)
  serve(worker, job.job, ['abcdefgh'])
  await user.next('done')
  t.ok(id)
  await submit(user, { models: ['m/two'] })
  await submit(user, { max_length: 1000 }) // any model, but longer than the worker allows
  const status = await api(url, 'GET', '/v1/status')
  t.equal(status.status, 200)
  t.same(status.body.workers.map((w: any) => [w.name, w.owner, w.models, w.jobs]), [['status-w', 'owner', ['m/one'], 1]])
  t.same(status.body.waiting, { 'm/two': 1, '*': 1 })
  t.same(status.body.throughput, { jobs_per_min: 1, tokens_per_min: 2 })
  t.equal(status.body.top[0].username, 'owner')
  const metrics = await fetch(`${url}/metrics`).then((r) => r.text())
  t.match(metrics, /horde_waiting_requests\{model="m\/two"\} 1/)
  t.match(metrics, /horde_workers_connected 1/)
  t.match(metrics, /horde_jobs_total\{outcome="done"\} 1/)
})
