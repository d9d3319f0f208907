import t from 'tap'
import net from 'node:net'
import { freePort } from '../src/redis/redis-server.js'
import { api, registerUser, startBroker, startTestRedis, tempDir, eventually, grant, sleep } from './helpers/harness.js'
import { runScript } from './helpers/process.js'
import { connect } from './helpers/ws.js'
import { PLAUSIBLE_MS, rawWorker, serve } from './helpers/pipeline.js'
import { CookieClient, SESSION_SECRET, startFakeProvider } from './helpers/oauth-provider.js'

t.test('no API key and no prompt text reach the logs at info level; SIGTERM drains cleanly', async (t) => {
  const redis = await startTestRedis(t)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const broker = runScript(t, '../src/main.ts', [], { PORT: String(port), DATA_DIR: tempDir(), REDIS_URL: redis.url, LOG_LEVEL: 'info' })
  await broker.waitFor(/horde-broker listening/, 'stdout', 30_000)
  const alice = await registerUser(url, 'alice')
  const owner = await registerUser(url, 'owner')
  const secretPrompt = 'SECRET-PROMPT-' + Math.random().toString(36).slice(2)
  const worker = await rawWorker(url.replace('http', 'ws'), owner.key, { name: 'w' })
  const submitted = await api(url, 'POST', '/v1/generate', { headers: { authorization: `Bearer ${alice.key}` }, body: { prompt: secretPrompt } })
  t.equal(submitted.status, 202)
  const job = await worker.next('job')
  t.equal(job.prompt, secretPrompt)
  serve(worker, job.job, ['generated text'])
  await worker.next('settled')
  await api(url, 'GET', '/v1/users/me', { key: alice.key })
  await api(url, 'GET', '/v1/users/me', { key: 'hb_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' })
  worker.close()
  broker.child.kill('SIGTERM')
  const exit = await broker.exited
  t.equal(exit.code, 0, 'SIGTERM: drained and exited 0')
  const logs = broker.stdout() + broker.stderr()
  t.ok(logs.length > 200, 'there are logs to look at')
  for (const secret of [alice.key, owner.key, alice.key.slice(-32), 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', secretPrompt, 'generated text']) {
    t.notOk(logs.includes(secret), `logs do not contain ${secret.slice(0, 12)}…`)
  }
})

t.test('every REST write needs a key, except registration and anonymous generation; every body is size-limited', async (t) => {
  const redis = await startTestRedis(t)
  const { url, broker } = await startBroker(t, { redis })
  const spec = (await api(url, 'GET', '/v1/openapi.json')).body
  // Anonymous use is a feature: registering, and submitting or cancelling one's own anonymous requests.
  // The OpenAI-compatible calls take no key as the Anonymous account, like the native generate route.
  const open = new Set(['POST /v1/users', 'POST /v1/generate', 'DELETE /v1/generate/{id}', 'POST /v1/chat/completions', 'POST /v1/completions'])
  let writes = 0
  for (const [route, methods] of Object.entries<Record<string, unknown>>(spec.paths)) {
    for (const method of Object.keys(methods)) {
      if (!['post', 'put', 'patch', 'delete'].includes(method)) continue
      writes++
      const concrete = route.replace(/\{[^}]+\}/g, '1')
      const name = `${method.toUpperCase()} ${route}`
      const anonymous = await api(url, method.toUpperCase(), concrete, { body: {} })
      const huge = await api(url, method.toUpperCase(), concrete, { raw: JSON.stringify({ x: 'y'.repeat(400_000) }) })
      if (route.startsWith('/api/v2/')) {
        // AI Horde's API, with its semantics (docs/horde-api.md): the anonymous key is part of
        // it; an empty body is refused in AI Horde's error shape, as is one over the limit.
        t.ok(anonymous.status >= 400 && anonymous.status < 500 && typeof anonymous.body.rc === 'string', `${name} refuses an empty anonymous call with an AI Horde error (${anonymous.status} ${anonymous.body.rc})`)
        t.same([huge.status, huge.body.rc], [400, 'TooLong'], `${name} refuses a 400 KB body (AI Horde's TooLong)`)
        continue
      }
      if (open.has(name)) t.ok([400, 404].includes(anonymous.status), `${name} is open to anonymous use, and validates (${anonymous.status})`)
      else t.ok([401, 403].includes(anonymous.status), `${name} refuses anonymous callers (${anonymous.status})`)
      t.equal(huge.status, 413, `${name} refuses a 400 KB body`)
    }
  }
  t.ok(writes >= 6, `${writes} write routes checked`)
  t.ok(broker)
})

t.test('per-address connection and upgrade-rate limits', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl } = await startBroker(t, { redis, env: { CONNECTIONS_PER_IP: '2', UPGRADES_PER_SECOND: '100' } })
  const a = await connect(`${wsUrl}/v1/client`)
  const b = await connect(`${wsUrl}/v1/client`)
  await t.rejects(connect(`${wsUrl}/v1/client`), { message: 'upgrade refused: 429' }, 'a third socket from one address is refused')
  a.close()
  await a.closed
  await eventually(async () => {
    const c = await connect(`${wsUrl}/v1/client`).catch(() => undefined)
    c?.close()
    return c
  }, 3000, 'a freed slot')
  b.close()

  const redis2 = await startTestRedis(t)
  const slow = await startBroker(t, { redis: redis2, env: { UPGRADES_PER_SECOND: '1' } })
  const first = await connect(`${slow.wsUrl}/v1/client`)
  const second = await connect(`${slow.wsUrl}/v1/client`)
  await t.rejects(connect(`${slow.wsUrl}/v1/client`), { message: 'upgrade refused: 429' }, 'a burst of upgrades past the rate is refused')
  first.close()
  second.close()
})

t.test('scopes are enforced on sockets too', async (t) => {
  const redis = await startTestRedis(t)
  const { url, wsUrl, broker } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  await grant(broker, alice.id, 1)
  const readOnly = (await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'ro', scopes: ['read'] } })).body.apikey
  await t.rejects(connect(`${wsUrl}/v1/worker`, readOnly), { message: 'upgrade refused: 403' }, 'a read key cannot serve as a worker')
  await t.rejects(connect(`${wsUrl}/v1/client`, readOnly), { message: 'upgrade refused: 403' }, 'a read key cannot generate')
  const gen = await api(url, 'POST', '/v1/generate', { key: readOnly, body: { prompt: 'x' } })
  t.equal(gen.body.error.code, 'insufficient_scope')
})

t.test('an upgrade that fails its handshake after admission gives its connection slot back', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl } = await startBroker(t, { redis, env: { CONNECTIONS_PER_IP: '2', UPGRADES_PER_SECOND: '100' } })
  const port = Number(new URL(wsUrl).port)
  // Passes authentication and the limits, then ws refuses it (no Sec-WebSocket-Key): no socket is ever opened.
  const broken = () => new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('GET /v1/client HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n')
    })
    let answer = ''
    socket.on('data', (d) => { answer += String(d) })
    socket.on('close', () => resolve(answer.split('\r\n')[0]))
    socket.on('error', reject)
  })
  for (let i = 0; i < 5; i++) t.match(await broken(), /^HTTP\/1.1 400/, `broken handshake ${i + 1} is refused by ws`)
  const a = await eventually(() => connect(`${wsUrl}/v1/client`).catch(() => undefined), 3000, 'a first socket')
  const b = await eventually(() => connect(`${wsUrl}/v1/client`).catch(() => undefined), 3000, 'a second socket')
  if (!a || !b) throw new Error('no sockets')
  t.ok(a && b, 'both slots of the address are still free')
  await t.rejects(connect(`${wsUrl}/v1/client`), { message: 'upgrade refused: 429' }, 'and the limit still holds')
  a.close()
  b.close()
})

t.test('narrow keys: awards need the transfer scope, reading and cancelling requests need generate', async (t) => {
  const redis = await startTestRedis(t)
  const { url, broker } = await startBroker(t, { redis })
  const mod = await registerUser(url, 'mod')
  await registerUser(url, 'bob')
  await broker.services.accounts.setRoles(mod.id, ['moderator'])
  const modRead = (await api(url, 'POST', '/v1/users/me/keys', { key: mod.key, body: { name: 'ro', scopes: ['read', 'generate', 'work'] } })).body.apikey
  const refused = await api(url, 'POST', '/v1/kudos/awards', { key: modRead, body: { to: 'bob', amount: 1000, memo: 'leaked key' } })
  t.equal(refused.status, 403, 'a moderator key without the transfer scope mints nothing')
  t.equal(refused.body.error.code, 'insufficient_scope')
  const allowed = await api(url, 'POST', '/v1/kudos/awards', { key: mod.key, body: { to: 'bob', amount: 1, memo: 'ok' } })
  t.equal(allowed.status, 201, 'the full key still awards')

  const alice = await registerUser(url, 'alice')
  const readOnly = (await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'ro', scopes: ['read'] } })).body.apikey
  const submitted = await api(url, 'POST', '/v1/generate', { key: alice.key, body: { prompt: 'private', models: ['nobody/serves-this'] } })
  t.equal(submitted.status, 202)
  const id = submitted.body.id
  const view = await api(url, 'GET', `/v1/generate/${id}`, { key: readOnly })
  t.equal(view.body.error?.code, 'insufficient_scope', 'a read-only key cannot read generations')
  const cancel = await api(url, 'DELETE', `/v1/generate/${id}`, { key: readOnly })
  t.equal(cancel.body.error?.code, 'insufficient_scope', 'a read-only key cannot cancel them')
  t.equal((await api(url, 'GET', `/v1/generate/${id}`, { key: alice.key })).body.state, 'waiting', 'still waiting')
  t.equal((await api(url, 'DELETE', `/v1/generate/${id}`, { key: alice.key })).body.state, 'cancelled', 'the owner with generate cancels')
})

t.test('revoking a key closes the worker and client sockets it opened', async (t) => {
  const redis = await startTestRedis(t)
  const { url, wsUrl, broker } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const make = async (name: string, scopes: string[]) => (await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name, scopes } })).body
  const workKey = await make('gpu', ['work'])
  const genKey = await make('app', ['generate'])
  const worker = await rawWorker(wsUrl, workKey.apikey, { name: 'stolen-key-worker' })
  const socket = await connect(`${wsUrl}/v1/client`, genKey.apikey)
  const other = await connect(`${wsUrl}/v1/client`, alice.key)
  t.teardown(() => other.close())

  t.equal((await api(url, 'DELETE', `/v1/users/me/keys/${workKey.id}`, { key: alice.key })).status, 204)
  const stillOpen = () => sleep(3000).then(() => ({ code: 0, reason: 'still open' }))
  const workerClosed = await Promise.race([worker.closed, stillOpen()])
  t.equal(workerClosed.code, 4401, 'the worker socket is closed with Unauthorized')
  t.ok(worker.frames.some((f) => f.type === 'error' && f.code === 'key_revoked'), 'and told why')
  t.ok(await eventually(() => broker.core.workforce.online.size === 0, 3000, 'the worker to leave dispatch').catch(() => false), 'the worker left dispatch')

  t.equal((await api(url, 'DELETE', `/v1/users/me/keys/${genKey.id}`, { key: alice.key })).status, 204)
  t.equal((await Promise.race([socket.closed, stillOpen()])).code, 4401, 'the client socket is closed too: it can no longer spend')
  other.send({ type: 'submit', id: 'still', prompt: 'p', models: ['nobody/serves-this'] })
  t.equal((await other.next((f) => f.id === 'still')).type, 'accepted', 'a socket of another key stays open')
})

t.test('the OAuth code and state in the callback URL do not reach the logs', async (t) => {
  const redis = await startTestRedis(t)
  const provider = await startFakeProvider(t)
  provider.as('github', { id: '31', name: 'logan' })
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const broker = runScript(t, '../src/main.ts', [], { PORT: String(port), DATA_DIR: tempDir(), REDIS_URL: redis.url, LOG_LEVEL: 'info', SESSION_SECRET, ...provider.env('github') })
  await broker.waitFor(/horde-broker listening/, 'stdout', 30_000)
  const browser = new CookieClient(url)
  const start = await browser.request('/auth/github/login')
  const atProvider = await fetch(start.headers.get('location')!, { redirect: 'manual' })
  const callback = new URL(atProvider.headers.get('location')!)
  const code = callback.searchParams.get('code')!
  const state = callback.searchParams.get('state')!
  t.ok(code && state, 'the provider answered with a code and the state')
  const done = await browser.follow(callback.href)
  t.equal(new URL(done.url).pathname, '/account', 'logged in')
  broker.child.kill('SIGTERM')
  await broker.exited
  const logs = broker.stdout() + broker.stderr()
  t.match(logs, /\/auth\/github\/callback/, 'the callback request is logged')
  t.notOk(logs.includes(code), 'without the authorization code')
  t.notOk(logs.includes(state), 'or the state')
})

t.test('registration is limited per address; a worker cannot stream unbounded text into one job', async (t) => {
  const redis = await startTestRedis(t)
  const { url, wsUrl } = await startBroker(t, { redis, env: { REGISTRATIONS_PER_MINUTE: '3' } })
  const answers = []
  for (let i = 0; i < 5; i++) answers.push((await api(url, 'POST', '/v1/users', { body: { username: `user${i}x` } })).status)
  t.same(answers, [201, 201, 201, 429, 429])

  const redis2 = await startTestRedis(t)
  const second = await startBroker(t, { redis: redis2, env: { MAX_JOB_TEXT_CHARS: '160' } })
  const owner = await registerUser(second.url, 'owner')
  const worker = await rawWorker(second.wsUrl, owner.key, { name: 'w' })
  t.teardown(() => worker.close())
  const submitted = await api(second.url, 'POST', '/v1/generate', { body: { prompt: 'p', max_length: 10 } })
  const job = await worker.next('job')
  worker.send({ type: 'chunk', job: job.job, seq: 0, text: 'x'.repeat(160) })
  worker.send({ type: 'chunk', job: job.job, seq: 1, text: 'y' })
  t.equal((await worker.next('error')).code, 'payload_too_large', 'past MAX_JOB_TEXT_CHARS')
  await sleep(PLAUSIBLE_MS)
  worker.send({ type: 'done', job: job.job, chunks: 1 })
  await worker.next('settled')
  const status = await api(second.url, 'GET', `/v1/generate/${submitted.body.id}`, { headers: { 'x-request-capability': submitted.body.capability } })
  t.equal(status.body.text.length, 160)
  t.equal(status.body.tokens, 10, 'billed up to max_length')
  t.ok(url && wsUrl)
})
