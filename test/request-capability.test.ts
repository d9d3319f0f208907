/**
 * Anonymous requests share one account, so their id alone must not open them: each gets a
 * capability at submit, needed to view, follow or cancel it (docs/security.md). Workers know
 * a job by its own id, one per attempt, and never learn the request's.
 */
import t from 'tap'
import { api, eventually, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve } from './helpers/pipeline.js'

const CAPABILITY = /^[\w-]{22}$/
const opens = (capability: string) => ({ headers: { 'x-request-capability': capability } })

t.test('REST: an anonymous request opens only with its capability', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const submitted = await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: ['nobody/serves-this'] } })
  t.equal(submitted.status, 202)
  t.match(submitted.body.capability, CAPABILITY, 'the 202 carries the capability')
  const { id, capability } = submitted.body

  const bare = await api(url, 'GET', `/v1/generate/${id}`)
  t.equal(bare.status, 404, 'another anonymous caller knowing the id sees nothing')
  t.equal(bare.body.error.code, 'unknown_request')
  t.match(bare.body.error.message, /X-Request-Capability/, 'the message says what is missing')
  t.equal((await api(url, 'GET', `/v1/generate/${id}`, opens('A'.repeat(22)))).status, 404, 'a wrong capability opens nothing')
  const someone = await registerUser(url, 'someone')
  t.equal((await api(url, 'GET', `/v1/generate/${id}`, { key: someone.key })).status, 404, 'nor does a logged-in stranger')
  const tooLong = await api(url, 'GET', `/v1/generate/${id}`, opens('x'.repeat(65)))
  t.equal(tooLong.status, 400, 'an absurd header is refused as bad input')

  t.equal((await api(url, 'DELETE', `/v1/generate/${id}`)).status, 404, 'nor cancel it without the capability')
  const view = await api(url, 'GET', `/v1/generate/${id}`, opens(capability))
  t.equal(view.status, 200)
  t.equal(view.body.state, 'waiting', 'the refused cancel changed nothing')
  const cancelled = await api(url, 'DELETE', `/v1/generate/${id}`, opens(capability))
  t.equal(cancelled.status, 200)
  t.equal(cancelled.body.state, 'cancelled', 'with it, the submitter cancels')
})

t.test('REST: a retry with the same idempotency key is given the same capability', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const send = () => api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: ['nobody/serves-this'] }, headers: { 'idempotency-key': 'k-7d1f0c2a9e' } })
  const first = await send()
  const again = await send()
  t.equal(first.status, 202)
  t.equal(again.status, 200)
  t.equal(again.body.replayed, true)
  t.equal(again.body.id, first.body.id)
  t.match(first.body.capability, CAPABILITY)
  t.equal(again.body.capability, first.body.capability, 'a retry whose answer was lost can still open its request')
  const other = await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: ['nobody/serves-this'] }, headers: { 'idempotency-key': 'k-other' } })
  t.not(other.body.capability, first.body.capability, 'another key, another capability')
})

t.test('a logged-in requester needs no capability; the v2 door keeps reading anonymous requests by id', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const mine = await api(url, 'POST', '/v1/generate', { key: alice.key, body: { prompt: 'p', models: ['nobody/serves-this'] } })
  t.equal(mine.status, 202)
  t.notOk('capability' in mine.body, 'a logged-in requester is not given one')
  t.equal((await api(url, 'GET', `/v1/generate/${mine.body.id}`, { key: alice.key })).status, 200, 'the key is enough')

  // AI Horde clients read a request by its id alone: the v2 door's anonymous requests carry no capability.
  const v2 = await api(url, 'POST', '/api/v2/generate/text/async', { key: '0000000000', body: { prompt: 'p', models: ['nobody/serves-this'], params: { max_length: 8 } } })
  t.equal(v2.status, 202)
  t.notOk('capability' in v2.body)
  t.equal((await api(url, 'GET', `/api/v2/generate/text/status/${v2.body.id}`)).status, 200, 'readable by id alone, as AI Horde clients expect')

  // A native anonymous request is not opened through the v2 door either.
  const native = await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', models: ['nobody/serves-this'] } })
  t.equal((await api(url, 'GET', `/api/v2/generate/text/status/${native.body.id}`)).status, 404, 'not through v2 status')
  t.equal((await api(url, 'DELETE', `/api/v2/generate/text/status/${native.body.id}`)).status, 404, 'nor v2 cancel')
  t.equal((await api(url, 'GET', `/v1/generate/${native.body.id}`, opens(native.body.capability))).body.state, 'waiting', 'still waiting')
})

t.test('socket: the submitting socket holds the capability; another socket needs it', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl } = await startBroker(t, { redis })
  const mine = await client(wsUrl)
  const other = await client(wsUrl)
  t.teardown(() => { mine.close(); other.close() })
  mine.send({ type: 'submit', id: 's', prompt: 'p', models: ['nobody/serves-this'] })
  const accepted = await mine.next('accepted')
  t.match(accepted.capability, CAPABILITY, 'accepted carries the capability')

  other.send({ type: 'attach', id: 'a1', request: accepted.request })
  t.equal((await other.next((f) => f.type === 'error' && f.id === 'a1')).code, 'unknown_request', 'attach by id alone is refused')
  other.send({ type: 'cancel', id: 'c1', request: accepted.request })
  t.equal((await other.next((f) => f.type === 'error' && f.id === 'c1')).code, 'unknown_request', 'cancel by id alone is refused')
  other.send({ type: 'attach', id: 'a2', request: accepted.request, capability: 'B'.repeat(22) })
  t.equal((await other.next((f) => f.type === 'error' && f.id === 'a2')).code, 'unknown_request', 'a wrong capability is refused')

  other.send({ type: 'attach', id: 'a3', request: accepted.request, capability: accepted.capability })
  const attached = await other.next('attached')
  t.equal(attached.state, 'waiting', 'with the capability, another socket follows it')
  // The submitting socket cancels without sending it again.
  mine.send({ type: 'cancel', id: 'c2', request: accepted.request })
  t.equal((await mine.next('cancelled')).request, accepted.request)
  t.equal((await other.next('cancelled')).request, accepted.request, 'the attached socket hears it too')
})

t.test('workers know a job by its own id, one per attempt, and it opens no request', async (t) => {
  const redis = await startTestRedis(t)
  const { url, wsUrl } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  const first = await rawWorker(wsUrl, owner.key, { name: 'first' })
  const submitted = await api(url, 'POST', '/v1/generate', { key: requester.key, body: { prompt: 'p', max_length: 8 } })
  const id = submitted.body.id
  const job = await first.next('job')
  const { forRequest, ...sent } = job // forRequest: the test helper's note, not the broker's
  t.equal(forRequest, id, 'this is the request\'s job')
  t.notOk(JSON.stringify(sent).includes(id), 'the job frame does not hold the request id')
  t.not(job.job, id)
  first.send({ type: 'fail', job: job.job, reason: 'backend down' })
  t.teardown(() => first.close())
  const retried = await first.next('job') // the only worker: the retry comes back to it
  t.equal(retried.attempt, 2)
  t.not(retried.job, job.job, 'the second attempt has a job id of its own')

  // The id of the lost attempt opens nothing to reach the request, through any door.
  for (const key of [owner.key, undefined]) {
    t.equal((await api(url, 'GET', `/v1/generate/${job.job}`, { key })).status, 404)
    t.equal((await api(url, 'DELETE', `/v1/generate/${job.job}`, { key })).status, 404)
    t.equal((await api(url, 'GET', `/api/v2/generate/text/status/${job.job}`, { key })).status, 404)
    t.equal((await api(url, 'DELETE', `/api/v2/generate/text/status/${job.job}`, { key })).status, 404)
  }
  first.send({ type: 'chunk', job: job.job, seq: 0, text: 'late' })
  t.equal((await first.next('error')).code, 'not_your_job', 'nor feed the retry with the old id')
  serve(first, retried.job, ['fine'])
  const view = await eventually(async () => {
    const answer = await api(url, 'GET', `/v1/generate/${id}`, { key: requester.key })
    return answer.body.state === 'done' ? answer : undefined
  }, 10_000, 'the request to be done')
  t.equal(view!.body.text, 'fine', 'the request got the second attempt\'s text only')
})
