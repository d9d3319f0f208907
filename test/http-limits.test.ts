/**
 * HTTP request timeouts against a real broker: a client that trickles its body is cut off
 * after HTTP_REQUEST_TIMEOUT_SECONDS instead of holding the connection, while a long poll
 * whose request has arrived may wait longer than that and still answers.
 */
import net from 'node:net'
import t from 'tap'
import { api, registerUser, sleep, startBroker, startTestRedis } from './helpers/harness.js'

const BRIDGE = { name: 'timeout-bridge', models: ['demo/tiny'], max_length: 80, max_context_length: 1024, bridge_agent: 'KoboldAI Bridge:10:https://example.org', softprompts: [], priority_usernames: [] }

/** Opens a raw connection, sends headers announcing a body, then a byte every `everyMs`; resolves with how long the server kept it open (or null if still open after `giveUpMs`). */
async function trickle(url: string, everyMs: number, giveUpMs: number): Promise<{ openMs: number | null; answer: string }> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const started = Date.now()
  let answer = ''
  socket.on('data', (data) => { answer += data.toString() })
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)))
  socket.write(`POST /v1/users HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`)
  const timer = setInterval(() => { if (!socket.destroyed) socket.write(' ') }, everyMs)
  const openMs = await Promise.race([closed, sleep(giveUpMs).then(() => null)])
  clearInterval(timer)
  socket.destroy()
  return { openMs, answer }
}

t.test('a trickling request body is cut off after the request timeout', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis, env: { HTTP_REQUEST_TIMEOUT_SECONDS: '1' } })
  const { openMs, answer } = await trickle(url, 200, 8000)
  t.not(openMs, null, 'the server closed the connection while bytes were still arriving')
  t.ok(openMs !== null && openMs < 4000, `closed within the timeout and one check (${openMs} ms)`)
  t.match(answer, /^HTTP\/1\.1 408/, 'answered 408 Request Timeout')
  // A request that arrives whole is served as before.
  t.equal((await api(url, 'GET', '/health')).status, 200)
})

t.test('a long poll whose request has arrived may outlast the request timeout', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis, env: { HTTP_REQUEST_TIMEOUT_SECONDS: '1', HORDE_API_POP_WAIT_SECONDS: '2.5' } })
  const owner = await registerUser(url, 'timeout-owner')
  const started = Date.now()
  const answer = await api(url, 'POST', '/api/v2/generate/text/pop', { key: owner.key, body: BRIDGE })
  const waited = Date.now() - started
  t.equal(answer.status, 200, 'the pop answers after its wait')
  t.equal(answer.body.id, null, 'with no job')
  t.ok(waited >= 2400, `held for the pop wait, past the 1 s request timeout (${waited} ms)`)
})

t.test('the setting is bounded', async (t) => {
  const redis = await startTestRedis(t)
  await t.rejects(startBroker(t, { redis, env: { HTTP_REQUEST_TIMEOUT_SECONDS: '0' } }), /HTTP_REQUEST_TIMEOUT_SECONDS/)
})

t.test('TRUST_PROXY: a named proxy\'s X-Forwarded-For is the client address; otherwise the header is ignored', async (t) => {
  const body = { prompt: 'p', models: ['later/model'] }
  const from = (url: string, address: string) => api(url, 'POST', '/v1/generate', { body, headers: { 'x-forwarded-for': address } })
  const env = { MAX_ACTIVE_ANON_PER_IP: '1', SUBMITS_PER_SECOND: '100' }
  const redis = await startTestRedis(t)

  const behind = await startBroker(t, { redis, env: { ...env, TRUST_PROXY: '127.0.0.1' } })
  t.equal((await from(behind.url, '203.0.113.1')).status, 202, 'the first address submits')
  const again = await from(behind.url, '203.0.113.1')
  t.equal(again.status, 429, 'the same address is capped')
  t.equal(again.body.error.code, 'too_many_active')
  t.equal((await from(behind.url, '203.0.113.2')).status, 202, 'another address behind the proxy has its own cap')
  await behind.close()

  const direct = await startBroker(t, { redis, env })
  t.equal((await from(direct.url, '203.0.113.1')).status, 202)
  const claimed = await from(direct.url, '203.0.113.2')
  t.equal(claimed.status, 429, 'without TRUST_PROXY a claimed address counts as the TCP peer')
  t.equal(claimed.body.error.code, 'too_many_active')
})

t.test('TRUST_PROXY takes addresses and CIDR ranges only', async (t) => {
  const redis = await startTestRedis(t)
  for (const bad of ['true', '*', '1.2.3.4/40', 'proxy.example', '10.0.0.0/8/1']) {
    await t.rejects(startBroker(t, { redis, env: { TRUST_PROXY: bad } }), /TRUST_PROXY/, `refuses ${bad}`)
  }
  const ok = await startBroker(t, { redis, env: { TRUST_PROXY: '10.0.0.0/8, ::1, 127.0.0.1' } })
  t.same(ok.config.web.trustProxy, ['10.0.0.0/8', '::1', '127.0.0.1'])
})

t.test('login routes are rate limited per address (LOGINS_PER_MINUTE)', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis, env: { LOGINS_PER_MINUTE: '3' } })
  const keyLogin = () => fetch(`${url}/login/key`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'key=not-a-key&next=%2F' })
  const first = [await keyLogin(), await keyLogin(), await keyLogin()]
  t.ok(first.every((r) => r.status !== 429), `three key logins are answered (${first.map((r) => r.status).join(', ')})`)
  const fourth = await keyLogin()
  t.equal(fourth.status, 429, 'the fourth in the minute is refused')
  t.match(await fourth.text(), /too_many_requests|Rate limit|Too many/i, 'with the rate-limit error')

  const callback = () => fetch(`${url}/auth/github/callback?code=x&state=y`, { redirect: 'manual' })
  const callbacks = [await callback(), await callback(), await callback()]
  t.ok(callbacks.every((r) => r.status !== 429), `OAuth callbacks are answered (${callbacks.map((r) => r.status).join(', ')})`)
  t.equal((await callback()).status, 429, 'the OAuth callback is limited too')
  t.equal((await fetch(`${url}/health`)).status, 200, 'other routes are not')
})

async function openSocket(url: string): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  let text = ''
  socket.on('data', (data) => { text += data.toString() })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  return { socket, received: () => text, closed }
}

t.test('HTTP_CONNECTIONS_PER_IP: idle connections from one address are capped; a trusted proxy is not', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis, env: { HTTP_CONNECTIONS_PER_IP: '3' } })
  const held = [await openSocket(url), await openSocket(url), await openSocket(url)]
  const fourth = await openSocket(url)
  await Promise.race([fourth.closed, sleep(3000)])
  t.match(fourth.received(), /^HTTP\/1\.1 429/, 'the fourth connection is answered 429')
  t.match(fourth.received(), /"code":"too_many_connections"/, 'with the coded error')
  t.ok(fourth.socket.destroyed || fourth.received() !== '', 'and closed')
  for (const { socket } of held) t.notOk(socket.destroyed, 'the first three stay open')
  held[0]!.socket.destroy()
  await held[0]!.closed
  await sleep(50)
  const again = await api(url, 'GET', '/health')
  t.equal(again.status, 200, 'a closed connection gives its slot back')
  for (const { socket } of held) socket.destroy()

  const behind = await startBroker(t, { redis, env: { HTTP_CONNECTIONS_PER_IP: '2', TRUST_PROXY: '127.0.0.1' } })
  const many = [await openSocket(behind.url), await openSocket(behind.url), await openSocket(behind.url)]
  t.equal((await api(behind.url, 'GET', '/health')).status, 200, 'the trusted proxy holds more connections than the cap')
  for (const { socket } of many) socket.destroy()
})
