/**
 * Per-address and per-user limits counted across broker processes (CLUSTER=on): two real
 * broker processes on one private Redis and one data directory. One address may hold
 * CONNECTIONS_PER_IP sockets in all, whichever process each reaches; a slot given back on one
 * process is taken on the other; a process killed with -9 stops counting within the holders'
 * TTL; and the socket submission bucket of a user is one bucket for the whole horde.
 */
import t from 'tap'
import WebSocket from 'ws'
import { CONNECTION_COUNTER_DEFAULTS } from '../../src/limits/redis-connection-counter.js'
import { eventually, registerUser, startTestRedis, tempDir } from '../helpers/harness.js'
import { startBrokerProcess, type BrokerProcess } from '../helpers/processes.js'
import { connect } from '../helpers/ws.js'

const LIMIT = 3
const ENV = {
  CLUSTER: 'on',
  SESSION_SECRET: 'a shared session secret of the test cluster, 48 chars',
  CONNECTIONS_PER_IP: String(LIMIT),
  UPGRADES_PER_SECOND: '1000',
  // One socket submission per user every 10 s (a burst of one).
  SUBMITS_PER_SECOND: '0.1',
}

/** A client socket from a chosen local address; resolves once open, rejects with the refusal's status. */
function socketFrom(broker: BrokerProcess, address: string): Promise<WebSocket> {
  const ws = new WebSocket(`${broker.url.replace(/^http/, 'ws')}/v1/client`, { localAddress: address })
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => { reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })); ws.terminate() })
    ws.once('error', reject)
  })
}

const refused = (promise: Promise<WebSocket>) => promise.then((ws) => { ws.close(); return false }, (error) => (error as { status?: number }).status === 429)

t.test('limits are counted across processes', async (t) => {
  const redis = await startTestRedis(t)
  const dataDir = tempDir('horde-cluster-limits-')
  // One after the other: the first migrates the shared database.
  const a = await startBrokerProcess(t, { redisUrl: redis.url, dataDir, env: ENV })
  const b = await startBrokerProcess(t, { redisUrl: redis.url, dataDir, env: ENV })
  const held: WebSocket[] = []
  t.teardown(() => { for (const ws of held) ws.terminate() })

  t.test('a user\'s socket submissions draw on one bucket across processes', async (t) => {
    const user = await registerUser(a.url, 'limited')
    const onA = await connect(`${a.url.replace(/^http/, 'ws')}/v1/client`, user.key)
    const onB = await connect(`${b.url.replace(/^http/, 'ws')}/v1/client`, user.key)
    t.teardown(() => { onA.close(); onB.close() })
    onA.send({ type: 'submit', id: 'first', prompt: 'p' })
    t.equal((await onA.next((f) => f.id === 'first', 30_000)).type, 'accepted', 'the first submission (on A) is accepted')
    onB.send({ type: 'submit', id: 'second', prompt: 'p' })
    const second = await onB.next((f) => f.id === 'second', 30_000)
    t.same([second.type, second.code], ['error', 'too_many_requests'], 'the second, on B within the same 10 s, is refused: the bucket is shared')
  })

  t.test('one address holds CONNECTIONS_PER_IP sockets in all, on whichever process', async (t) => {
    const from = '127.0.0.3'
    held.push(await socketFrom(a, from), await socketFrom(a, from), await socketFrom(b, from))
    t.equal(await refused(socketFrom(a, from)), true, 'a fourth socket on A is refused 429 (two are on A, one on B)')
    t.equal(await refused(socketFrom(b, from)), true, 'a fourth socket on B is refused 429 (one is on B, two on A)')
    const other = await socketFrom(b, '127.0.0.4')
    t.pass('another address has its own slots')
    other.close()

    // A slot given back on A is taken on B.
    const closing = held.shift()!
    await new Promise<void>((resolve) => { closing.once('close', () => resolve()); closing.close() })
    held.push((await eventually(() => socketFrom(b, from).catch(() => undefined), 10_000, 'a socket on B once one on A closed'))!)
    t.equal(await refused(socketFrom(a, from)), true, 'and the limit holds again: one on A, two on B')

    // B dies holding two of the address's three slots; A alone holds one.
    const killedAt = Date.now()
    await b.kill()
    const replacements = await eventually(async () => {
      const first = await socketFrom(a, from).catch(() => undefined)
      if (!first) return undefined
      held.push(first)
      return first
    }, 60_000, 'the killed process\'s slots to stop counting')
    const lapsedMs = Date.now() - killedAt
    t.ok(replacements, `a socket on A ${lapsedMs} ms after the kill`)
    // Its liveness lapses within the TTL; the rest is the polling and a loaded machine's slack.
    t.ok(lapsedMs <= CONNECTION_COUNTER_DEFAULTS.ttlMs + 20_000, `within the TTL (${CONNECTION_COUNTER_DEFAULTS.ttlMs} ms) and a margin`)
    held.push(await socketFrom(a, from))
    t.equal(await refused(socketFrom(a, from)), true, 'three on A now, and the fourth is refused')
  })

})
