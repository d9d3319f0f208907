import t from 'tap'
import { api, registerUser, startBroker, startTestRedis, sleep } from './helpers/harness.js'
import { client, rawWorker, submit } from './helpers/pipeline.js'

t.test('jobs go only to workers whose models and limits fit', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const small = await rawWorker(wsUrl, owner.key, { name: 'small', models: ['m/a'], max_length: 80, max_context_length: 1024 })
  const big = await rawWorker(wsUrl, owner.key, { name: 'big', models: ['m/b'], max_length: 512, max_context_length: 8192, threads: 2 })
  t.teardown(() => { small.close(); big.close() })
  const user = await client(wsUrl)
  t.teardown(() => user.close())

  const forA = await submit(user, { models: ['m/a'], max_length: 80 })
  t.equal((await small.next('job')).forRequest, forA, 'model a goes to the worker serving a')
  const forB = await submit(user, { models: ['m/a', 'm/b'], max_length: 300 })
  t.equal((await big.next('job')).forRequest, forB, 'too long for small: goes to big, which serves one of the models')
  const anyLong = await submit(user, { max_length: 500, max_context_length: 6000 })
  const job = await big.next('job')
  t.equal(job.forRequest, anyLong, 'any model: the worker with room gets it')
  t.equal(job.model, 'm/b')
  await sleep(100)
  t.equal(small.frames.filter((f) => f.type === 'job').length, 1, 'the small worker got nothing it cannot serve')
})

t.test('a request nobody can serve stays queued and says so, then runs when a worker comes', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const user = await client(wsUrl)
  t.teardown(() => user.close())
  const id = await submit(user, { models: ['nobody/serves-this'] })
  const queued = await user.next('queued')
  t.equal(queued.request, id)
  t.equal(queued.is_possible, false)
  t.equal(queued.position, 0)
  const rest = await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: ['nobody/serves-this'] } })
  t.equal(rest.status, 202)
  t.equal(rest.body.is_possible, false)
  const status = await api(url, 'GET', `/v1/generate/${rest.body.id}`, { headers: { 'x-request-capability': rest.body.capability } })
  t.equal(status.body.state, 'waiting')
  t.equal(status.body.position, 1)

  const late = await rawWorker(wsUrl, owner.key, { name: 'late', models: ['nobody/serves-this'], threads: 2 })
  t.teardown(() => late.close())
  const first = await late.next('job')
  const second = await late.next('job')
  t.same([first.forRequest, second.forRequest].sort(), [id, rest.body.id].sort(), 'both run once a worker serves the model')
})

t.test('REST submit validates its body', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis, env: { MAX_PROMPT_CHARS: '100', MAX_LENGTH: '512' } })
  const cases: Array<[unknown, string]> = [
    [{}, 'validation_failed'],
    [{ prompt: '' }, 'validation_failed'],
    [{ prompt: 'x'.repeat(101) }, 'validation_failed'],
    [{ prompt: 'x', max_length: 100000 }, 'validation_failed'],
    [{ prompt: 'x', max_length: '80' }, 'validation_failed'],
    [{ prompt: 'x', models: 'one' }, 'validation_failed'],
    [{ prompt: 'x', extra: 1 }, 'validation_failed'],
  ]
  for (const [body, code] of cases) {
    const answer = await api(url, 'POST', '/v1/generate', { body })
    t.equal(answer.status, 400, JSON.stringify(body).slice(0, 60))
    t.equal(answer.body.error.code, code)
  }
  const count = await api(url, 'GET', '/v1/generate/nonexistent')
  t.equal(count.status, 404)
  t.equal(count.body.error.code, 'unknown_request')
})
