/**
 * The AI Horde v2 API as a polling bridge uses it, against a real broker: a pop with no
 * job, a pop that is waiting when a native client's request arrives, submit, a duplicate
 * submit, a stale one after the lease ran out, a faulted one; the ledger audit after each.
 */
import t, { type Test } from 'tap'
import { api, balanceOf, eventually, grant, ledgerInvariant, registerUser, startBroker, startTestRedis, type TestBroker } from '../helpers/harness.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const BRIDGE = { name: 'bridge-1', models: ['demo/tiny'], max_length: 80, max_context_length: 1024, bridge_agent: 'KoboldAI Bridge:10:https://example.org', softprompts: [], priority_usernames: [] }

async function auditClean(t: Test, broker: TestBroker['broker'], what: string): Promise<void> {
  const report = await ledgerInvariant(broker)
  t.same(report.problems, [], `${what}: the ledger audit finds nothing`)
  t.equal(report.sumBalances, report.minted, `${what}: balances add up to what was minted`)
}

t.test('a bridge-shaped loop: pop, wait, submit, duplicate, stale, faulted', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis, env: { HORDE_API_POP_WAIT_SECONDS: '1', HORDE_API_JOB_TTL_SECONDS: '2' } })
  const owner = await registerUser(url, 'bridge-owner')
  const client = await registerUser(url, 'native-client')
  await grant(broker, client.id, 100)
  const pop = (body: object = BRIDGE, key = owner.key) => api(url, 'POST', '/api/v2/generate/text/pop', { key, body })
  const submit = (body: object, key = owner.key) => api(url, 'POST', '/api/v2/generate/text/submit', { key, body })

  await t.test('a pop with nothing to do answers the whole empty shape after its wait', async (t) => {
    const started = Date.now()
    const answer = await pop()
    t.equal(answer.status, 200)
    t.same(answer.body, { id: null, ids: [], skipped: {}, payload: {}, softprompt: null, model: null, ttl: null, messages: [] }, 'every key, with nulls')
    t.ok(Date.now() - started >= 900, `held for the pop wait (${Date.now() - started} ms)`)
    const online = await broker.core.dispatcher.onlineWorkers()
    t.ok(online.some((w) => w.name === 'bridge-1' && w.owner === 'bridge-owner'), 'the bridge counts as online after its pop')
  })

  await t.test('skipped counts the waiting requests this worker cannot serve', async (t) => {
    const other = await api(url, 'POST', '/v1/generate', { key: client.key, body: { prompt: 'for another model', models: ['other/model'], max_length: 16 } })
    t.equal(other.status, 202)
    const answer = await pop()
    t.same(answer.body.skipped, { models: 1 }, 'one request for a model the bridge does not serve')
    t.equal(answer.body.id, null)
    t.equal((await api(url, 'DELETE', `/v1/generate/${other.body.id}`, { key: client.key })).status, 200)
  })

  let jobId = ''
  let requestId = ''
  await t.test('a waiting pop gets a native client\'s request the moment it is submitted', async (t) => {
    const waiting = pop({ ...BRIDGE })
    await eventually(() => [...broker.core.workforce.online].some((w) => w.info?.name === 'bridge-1' && w.free > 0), 5000, 'the pop to be waiting')
    const submitted = await api(url, 'POST', '/v1/generate', { key: client.key, body: { prompt: 'Once upon a time', models: ['demo/tiny'], max_length: 20, params: { temperature: 0.7, steps: 30, width: 512, length: 3 } } })
    t.equal(submitted.status, 202)
    requestId = submitted.body.id
    t.match(requestId, UUID, 'request ids are UUIDs')
    const answer = await waiting
    t.equal(answer.status, 200)
    jobId = answer.body.id
    t.match(jobId, UUID, 'the job id is a UUID')
    t.not(jobId, requestId, 'a job id names one attempt, not the request')
    t.same(answer.body.ids, [jobId])
    t.equal(answer.body.model, 'demo/tiny')
    t.equal(answer.body.ttl, 2)
    t.ok('softprompt' in answer.body && answer.body.softprompt === null, 'softprompt is there (null)')
    t.same(answer.body.skipped, {})
    t.same(answer.body.payload, { temperature: 0.7, prompt: 'Once upon a time', n: 1, max_length: 20, max_context_length: 1024 }, 'params plus prompt, n and both lengths; no width, length or steps')
    const view = await api(url, 'GET', `/v1/generate/${requestId}`, { key: client.key })
    t.equal(view.body.state, 'running')
    t.equal(view.body.worker, 'bridge-1')
  })

  await t.test('a submit settles like a native done and answers the reward', async (t) => {
    const before = await balanceOf(broker, client.id)
    const answer = await submit({ id: jobId, generation: ' there was a bridge.', state: 'ok', seed: 42 })
    t.equal(answer.status, 200)
    t.same(Object.keys(answer.body), ['reward'])
    t.ok(answer.body.reward > 0, `rewarded ${answer.body.reward}`)
    const view = await api(url, 'GET', `/v1/generate/${requestId}`, { key: client.key })
    t.equal(view.body.state, 'done')
    t.equal(view.body.text, ' there was a bridge.')
    t.equal(view.body.kudos, answer.body.reward, 'the reward is what the request was billed')
    t.equal(await balanceOf(broker, owner.id), answer.body.reward, 'the owner earned it')
    t.equal(Math.round((before - await balanceOf(broker, client.id)) * 1000), Math.round(answer.body.reward * 1000), 'the client paid it')
    await auditClean(t, broker, 'after a submit')
  })

  await t.test('a second submit of the same job is a DuplicateGen and pays nothing more', async (t) => {
    const balance = await balanceOf(broker, owner.id)
    const answer = await submit({ id: jobId, generation: 'again' })
    t.equal(answer.status, 400)
    t.equal(answer.body.rc, 'DuplicateGen')
    t.match(answer.body.message, /already submitted/)
    t.equal(await balanceOf(broker, owner.id), balance)
    await auditClean(t, broker, 'after a duplicate')
  })

  await t.test('unknown ids, other keys and anonymous workers are refused with AI Horde\'s codes', async (t) => {
    const unknown = await submit({ id: '00000000-0000-4000-8000-000000000000', generation: 'x' })
    t.equal(unknown.status, 404)
    t.equal(unknown.body.rc, 'InvalidJobID')
    const anon = await pop(BRIDGE, '0000000000')
    t.equal(anon.status, 403)
    t.equal(anon.body.rc, 'AnonForbiddenWorker')
    const noKey = await api(url, 'POST', '/api/v2/generate/text/pop', { body: BRIDGE })
    t.equal(noKey.body.rc, 'AnonForbiddenWorker', 'no key is the Anonymous account too')
    const badKey = await pop(BRIDGE, 'hb_not_a_key')
    t.equal(badKey.status, 401)
    t.equal(badKey.body.rc, 'InvalidAPIKey')
    const stolen = await pop({ ...BRIDGE }, client.key)
    t.equal(stolen.status, 403)
    t.equal(stolen.body.rc, 'WrongCredentials', 'another user cannot pop as this worker')
    const noName = await pop({ models: ['demo/tiny'] })
    t.equal(noName.status, 400)
    t.equal(noName.body.rc, 'BadRequest')
    t.ok(typeof noName.body.message === 'string')
    const badPriority = await pop({ ...BRIDGE, priority_usernames: ['#x'] })
    t.equal(badPriority.body.rc, 'InvalidPriorityUsername')
  })

  await t.test('a job not submitted within its ttl goes back to the queue; its late submit is an InvalidJobID', async (t) => {
    const waiting = pop()
    await eventually(() => [...broker.core.workforce.online].some((w) => w.info?.name === 'bridge-1' && w.free > 0), 5000, 'the pop to be waiting')
    const submitted = await api(url, 'POST', '/v1/generate', { key: client.key, body: { prompt: 'A slow bridge', models: ['demo/tiny'], max_length: 16 } })
    const first = await waiting
    t.equal(first.body.payload.prompt, 'A slow bridge')
    await eventually(async () => (await api(url, 'GET', `/v1/generate/${submitted.body.id}`, { key: client.key })).body.state === 'waiting', 8000, 'the lease to run out')
    const late = await submit({ id: first.body.id, generation: 'too late' })
    t.equal(late.status, 404)
    t.equal(late.body.rc, 'InvalidJobID')
    await auditClean(t, broker, 'after a stale submit')

    const again = await pop()
    t.equal(again.body.payload.prompt, 'A slow bridge', 'the same request comes back')
    t.not(again.body.id, first.body.id, 'under a new job id')
    const faulted = await submit({ id: again.body.id, generation: '', state: 'faulted' })
    t.equal(faulted.status, 200)
    t.same(faulted.body, { reward: 0 }, 'a faulted job pays nothing')
    await auditClean(t, broker, 'after a faulted submit')

    const third = await pop()
    t.equal(third.body.payload.prompt, 'A slow bridge', 'faulted sent it back to the queue')
    const done = await submit({ id: third.body.id, generation: 'at last' })
    t.ok(done.body.reward > 0)
    const view = await api(url, 'GET', `/v1/generate/${submitted.body.id}`, { key: client.key })
    t.equal(view.body.state, 'done')
    t.equal(view.body.text, 'at last')
    await auditClean(t, broker, 'after the retried job is done')
  })

  await t.test('a pop with another configuration is a new session of the same worker', async (t) => {
    const answer = await pop({ ...BRIDGE, max_length: 40 })
    t.equal(answer.status, 200)
    const online = await broker.core.dispatcher.onlineWorkers()
    const mine = online.filter((w) => w.name === 'bridge-1')
    t.equal(mine.length, 1, 'still one worker of that name')
    t.equal(mine[0].maxLength, 40)
  })
})
