/**
 * The AI Horde v2 API as a client uses it, against a real broker whose worker is a native
 * WebSocket worker (the reference worker, demo backend): async submit, status polls by id
 * alone, n > 1, cancel, the error shapes, CORS; the accounts and status routes; the ledger
 * audit after each.
 */
import t, { type Test } from 'tap'
import { WorkerClient } from '../../src/clients/worker-client.js'
import { createDemoBackend } from '../../src/clients/backends/demo.js'
import { api, balanceOf, eventually, grant, ledgerInvariant, registerUser, startBroker, startTestRedis, type TestBroker } from '../helpers/harness.js'
import { connect } from '../helpers/ws.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

async function auditClean(t: Test, broker: TestBroker['broker'], what: string): Promise<void> {
  const report = await ledgerInvariant(broker)
  t.same(report.problems, [], `${what}: the ledger audit finds nothing`)
  t.equal(report.sumBalances, report.minted, `${what}: balances add up to what was minted`)
}

t.test('a client-shaped loop against a native worker', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'socket-owner')
  const user = await registerUser(url, 'v2-user')
  await grant(broker, user.id, 50)
  const worker = new WorkerClient({
    url, key: owner.key, name: 'socket-1', models: ['demo/tiny'], maxLength: 512, maxContextLength: 4096,
    backend: createDemoBackend({ delayMs: 5 }), reconnect: false,
  })
  worker.on('error', () => {})
  await worker.start()
  t.teardown(() => worker.stop())
  const v2 = (method: string, route: string, options: { key?: string; body?: unknown; headers?: Record<string, string> } = {}) => api(url, method, `/api/v2${route}`, options)
  const until = (id: string, done: (body: any) => boolean) => eventually(async () => {
    const answer = await v2('GET', `/generate/text/status/${id}`)
    return done(answer.body) ? answer.body : undefined
  }, 10_000, `status of ${id}`)

  await t.test('async, then status polls without a key until it is done', async (t) => {
    const submitted = await v2('POST', '/generate/text/async', {
      key: user.key, headers: { 'client-agent': 'test-client:1:https://example.org' },
      body: { prompt: 'Once upon a time', params: { max_length: 12, temperature: 0.5, sampler_order: [6, 0, 1] }, models: ['demo/tiny'], trusted_workers: false, softprompt: null, unknown_field: { nested: true } },
    })
    t.equal(submitted.status, 202)
    t.match(submitted.body.id, UUID)
    t.ok(typeof submitted.body.kudos === 'number' && submitted.body.kudos > 0, `expected kudos ${submitted.body.kudos}`)
    t.notOk('message' in submitted.body, 'no message when a worker can serve it')
    // A native watcher sees the same request's text stream (one horde).
    const body = await until(submitted.body.id, (b) => b.done)
    t.notOk('message' in body, 'no message key on a successful status')
    t.same({ finished: body.finished, processing: body.processing, waiting: body.waiting, done: body.done, faulted: body.faulted, is_possible: body.is_possible, queue_position: body.queue_position, restarted: body.restarted },
      { finished: 1, processing: 0, waiting: 0, done: true, faulted: false, is_possible: true, queue_position: 0, restarted: 0 })
    t.equal(body.generations.length, 1)
    const [generation] = body.generations
    t.equal(generation.state, 'ok')
    t.equal(generation.worker_name, 'socket-1')
    t.match(generation.worker_id, UUID, 'worker ids are UUIDs')
    t.equal(generation.model, 'demo/tiny')
    t.equal(generation.seed, 0)
    const native = await api(url, 'GET', `/v1/generate/${submitted.body.id}`, { key: user.key })
    t.equal(generation.text, native.body.text, 'the text the native view holds')
    t.equal(native.body.tokens, 12, 'max_length from params')
    t.equal(body.kudos, Math.round(native.body.kudos), 'kudos consumed, rounded as AI Horde does')
    const worker = await v2('GET', `/workers/${generation.worker_id}`)
    t.equal(worker.status, 200)
    t.equal(worker.body.name, 'socket-1')
    t.equal(worker.body.owner, `socket-owner#${owner.id}`)
    await auditClean(t, broker, 'after a v2 request served by a socket worker')
  })

  await t.test('a native watcher follows a v2 request as it streams', async (t) => {
    const submitted = await v2('POST', '/generate/text/async', { key: user.key, body: { prompt: 'Watch me', params: { max_length: 30 } } })
    const peer = await connect(`${wsUrl}/v1/client`, user.key)
    t.teardown(() => peer.close())
    peer.send({ type: 'attach', id: 1, request: submitted.body.id })
    const chunk = await peer.next((f) => f.type === 'chunk' || f.type === 'done' || (f.type === 'attached' && f.state === 'done'), 10_000)
    t.ok(chunk, `the native socket got ${chunk.type}`)
    await until(submitted.body.id, (b) => b.done)
  })

  await t.test('n > 1 gives n generations under one id', async (t) => {
    const submitted = await v2('POST', '/generate/text/async', { key: user.key, body: { prompt: 'Twice', params: { n: 2, max_length: 8 } } })
    t.equal(submitted.status, 202)
    const body = await until(submitted.body.id, (b) => b.done)
    t.equal(body.generations.length, 2)
    t.equal(body.finished, 2)
    t.not(body.generations[0].id, body.generations[1].id)
    await auditClean(t, broker, 'after n = 2')
  })

  await t.test('cancel answers the status body; a request no worker can serve says so', async (t) => {
    const submitted = await v2('POST', '/generate/text/async', { key: user.key, body: { prompt: 'Nobody serves this', models: ['nobody/none'] } })
    t.equal(submitted.status, 202)
    t.match(submitted.body.message, /No available workers/)
    const status = await v2('GET', `/generate/text/status/${submitted.body.id}`)
    t.equal(status.body.is_possible, false)
    t.equal(status.body.waiting, 1)
    t.equal(status.body.queue_position, 1)
    const cancelled = await v2('DELETE', `/generate/text/status/${submitted.body.id}`)
    t.equal(cancelled.status, 200)
    t.equal(cancelled.body.done, true)
    t.equal(cancelled.body.waiting, 0)
    t.same(cancelled.body.generations, [])
    const native = await api(url, 'GET', `/v1/generate/${submitted.body.id}`, { key: user.key })
    t.equal(native.body.state, 'cancelled')
    await auditClean(t, broker, 'after a cancel')
  })

  await t.test('errors come in AI Horde\'s shape', async (t) => {
    const empty = await v2('POST', '/generate/text/async', { key: user.key, body: { prompt: '' } })
    t.equal(empty.status, 400)
    t.same(Object.keys(empty.body).sort(), ['message', 'rc'])
    t.equal(empty.body.rc, 'MissingPrompt')
    const badN = await v2('POST', '/generate/text/async', { key: user.key, body: { prompt: 'x', params: { n: 'two' } } })
    t.equal(badN.status, 400)
    t.equal(badN.body.rc, 'BadRequest')
    const unknown = await v2('GET', '/generate/text/status/00000000-0000-4000-8000-000000000000')
    t.equal(unknown.status, 404)
    t.equal(unknown.body.rc, 'RequestNotFound')
    const badKey = await v2('POST', '/generate/text/async', { key: 'hb_wrong_key', body: { prompt: 'x' } })
    t.equal(badKey.status, 401)
    t.equal(badKey.body.rc, 'InvalidAPIKey')
    const nowhere = await v2('GET', '/no/such/route')
    t.equal(nowhere.status, 404)
    t.equal(nowhere.body.rc, 'NotFound')
  })

  await t.test('anonymous requests with the anonymous key, and CORS for browsers', async (t) => {
    const preflight = await fetch(`${url}/api/v2/generate/text/async`, { method: 'OPTIONS', headers: { origin: 'https://lite.example.org', 'access-control-request-method': 'POST', 'access-control-request-headers': 'apikey, client-agent, content-type' } })
    t.equal(preflight.status, 204)
    t.equal(preflight.headers.get('access-control-allow-origin'), '*')
    t.match(preflight.headers.get('access-control-allow-headers') ?? '', /apikey/)
    t.match(preflight.headers.get('access-control-allow-headers') ?? '', /client-agent/)
    const submitted = await v2('POST', '/generate/text/async', { key: '0000000000', body: { prompt: 'Anonymous', params: { max_length: 8 } } })
    t.equal(submitted.status, 202)
    t.equal(submitted.headers.get('access-control-allow-origin'), '*')
    await until(submitted.body.id, (b) => b.done)
    await auditClean(t, broker, 'after an anonymous request')
  })

  await t.test('accounts: find_user, users, a user, and transfers sharing idempotency keys with native ones', async (t) => {
    const found = await v2('GET', '/find_user', { key: user.key })
    t.equal(found.status, 200)
    t.equal(found.body.username, `v2-user#${user.id}`)
    t.equal(found.body.id, user.id)
    t.equal(found.body.kudos, await balanceOf(broker, user.id))
    const anonymous = await v2('GET', '/find_user', { key: '0000000000' })
    t.equal(anonymous.body.id, 0)
    const noKey = await v2('GET', '/find_user')
    t.equal(noKey.status, 401)
    t.equal(noKey.body.rc, 'InvalidAPIKey')
    const one = await v2('GET', `/users/${owner.id}`)
    t.equal(one.body.username, `socket-owner#${owner.id}`)
    t.ok(one.body.kudos > 0, 'the worker owner earned kudos')
    t.equal((await v2('GET', '/users/alice')).body.rc, 'UserNotFound')
    const list = await v2('GET', '/users?page=1')
    t.ok(Array.isArray(list.body) && list.body.length >= 2)
    for (let i = 1; i < list.body.length; i++) t.ok(list.body[i - 1].kudos >= list.body[i].kudos, 'sorted by kudos')

    const before = await balanceOf(broker, owner.id)
    const sent = await v2('POST', '/kudos/transfer', { key: user.key, headers: { 'idempotency-key': 'tip-1' }, body: { username: `socket-owner#${owner.id}`, amount: 5 } })
    t.equal(sent.status, 200)
    t.same(sent.body, { transferred: 5 })
    const again = await api(url, 'POST', '/v1/kudos/transfers', { key: user.key, headers: { 'idempotency-key': 'tip-1' }, body: { to: owner.id, amount: '5' } })
    t.equal(again.status, 200, 'the native door replays the same key')
    t.equal(again.body.replayed, true)
    t.equal(await balanceOf(broker, owner.id), before + 5, 'moved once')
    const conflict = await v2('POST', '/kudos/transfer', { key: user.key, headers: { 'idempotency-key': 'tip-1' }, body: { username: `socket-owner#${owner.id}`, amount: 6 } })
    t.equal(conflict.status, 400)
    t.equal(conflict.body.rc, 'IdempotencyKeyConflict')
    const toNobody = await v2('POST', '/kudos/transfer', { key: user.key, body: { username: 'nobody#99999', amount: 1 } })
    t.equal(toNobody.body.rc, 'InvalidTargetUsername')
    const tooMuch = await v2('POST', '/kudos/transfer', { key: user.key, body: { username: `socket-owner#${owner.id}`, amount: 1_000_000 } })
    t.equal(tooMuch.status, 400)
    t.equal(tooMuch.body.rc, 'KudosTransferNotEnough')
    await auditClean(t, broker, 'after transfers')
  })

  await t.test('status routes', async (t) => {
    const heartbeat = await v2('GET', '/status/heartbeat')
    t.equal(heartbeat.body.message, 'OK')
    const models = await v2('GET', '/status/models?type=text')
    const tiny = models.body.find((m: any) => m.name === 'demo/tiny')
    t.match(tiny, { name: 'demo/tiny', count: 1, type: 'text', jobs: 0, queued: 0 })
    t.same((await v2('GET', '/status/models?type=image')).body, [])
    const performance = await v2('GET', '/status/performance')
    t.equal(performance.body.text_worker_count, 1)
    t.equal(performance.body.text_thread_count, 1)
    const workers = await v2('GET', '/workers?type=text')
    t.equal(workers.body.length, 1)
    t.match(workers.body[0], { name: 'socket-1', type: 'text', online: true, models: ['demo/tiny'], max_length: 512, max_context_length: 4096 })
    t.ok(workers.body[0].requests_fulfilled >= 4)
    const missing = await v2('GET', '/workers/00000000-0000-8000-8000-0000000003e7')
    t.equal(missing.status, 404)
    t.equal(missing.body.rc, 'WorkerNotFound')
  })
})
