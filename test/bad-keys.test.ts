/**
 * BAD_KEYS_PER_MINUTE: wrong API keys are counted per client address (the one TRUST_PROXY
 * believes), in Redis, and past the limit every request from that address presenting a key
 * gets 429 too_many_bad_keys before any lookup: REST, socket upgrades, the AI Horde `apikey`
 * header and the OpenAI bearer key alike, on every broker process sharing the Redis.
 */
import t from 'tap'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { connect } from './helpers/ws.js'

const WRONG = `hb_${'A'.repeat(12)}_${'B'.repeat(32)}`

t.test('wrong keys from one address are throttled; anonymous use and other addresses are not', async (t) => {
  const redis = await startTestRedis(t)
  const env = { BAD_KEYS_PER_MINUTE: '3', TRUST_PROXY: '127.0.0.1' }
  const { url, wsUrl } = await startBroker(t, { redis, env })
  const other = await startBroker(t, { redis, env })
  const alice = await registerUser(url, 'alice')
  const from = (address: string) => ({ 'x-forwarded-for': address })

  const misses = [
    await api(url, 'GET', '/v1/users/me', { key: WRONG, headers: from('10.0.0.1') }),
    await api(url, 'GET', '/v1/users/me', { key: 'not-even-a-key', headers: from('10.0.0.1') }),
    await api(url, 'GET', '/v1/users/me', { headers: { ...from('10.0.0.1'), authorization: `Bearer ${WRONG}` } }),
  ]
  t.same(misses.map((m) => m.status), [401, 401, 401], 'the first three wrong keys are answered 401')

  const over = await api(url, 'GET', '/v1/users/me', { key: WRONG, headers: from('10.0.0.1') })
  t.equal(over.status, 429, 'the fourth is refused')
  t.equal(over.body.error?.code, 'too_many_bad_keys', 'with its coded error')
  const retry = Number(over.headers.get('retry-after'))
  t.ok(retry >= 1 && retry <= 60, `Retry-After says when the window passes (${retry} s)`)

  const valid = await api(url, 'GET', '/v1/users/me', { key: alice.key, headers: from('10.0.0.1') })
  t.equal(valid.status, 429, 'even a valid key from that address waits: nothing is looked up')
  const anonymous = await api(url, 'GET', '/v1/users/me', { headers: from('10.0.0.1') })
  t.equal(anonymous.status, 200, 'a request with no key is still served (anonymous)')
  t.equal(anonymous.body.anonymous, true)

  const elsewhere = await api(url, 'GET', '/v1/users/me', { key: alice.key, headers: from('10.0.0.2') })
  t.equal(elsewhere.status, 200, 'valid-key traffic from another address is unaffected')
  t.equal(elsewhere.body.username, 'alice')

  const horde = await api(url, 'GET', '/api/v2/find_user', { key: alice.key, headers: from('10.0.0.1') })
  t.equal(horde.status, 429, 'the AI Horde apikey header is throttled')
  t.equal(horde.body.rc, 'TooManyRequests', 'answered in AI Horde terms')
  const openai = await api(url, 'GET', '/v1/models', { headers: { ...from('10.0.0.1'), authorization: `Bearer ${alice.key}` } })
  t.equal(openai.status, 429, 'the OpenAI bearer key is throttled')
  t.equal(openai.body.error?.code, 'rate_limit_exceeded', 'answered in OpenAI terms')

  const upgrade = await connect(`${wsUrl}/v1/client`, alice.key, from('10.0.0.1')).then(() => 0, (error) => error.status)
  t.equal(upgrade, 429, 'a socket upgrade with a key is refused before it exists')

  const shared = await api(other.url, 'GET', '/v1/users/me', { key: alice.key, headers: from('10.0.0.1') })
  t.equal(shared.status, 429, 'another broker process on the same Redis refuses the address too')
  const wrongElsewhere = await api(other.url, 'GET', '/v1/users/me', { key: WRONG, headers: from('10.0.0.3') })
  t.equal(wrongElsewhere.status, 401, 'another address still gets its own 401s')
})
