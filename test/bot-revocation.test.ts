import t from 'tap'
import { api, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot, refusedStatus } from './helpers/bot-client.js'

t.test('revoking a key closes its bot sockets with 4401', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const created = await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'tipbot', scopes: ['read', 'transfer'] } })
  const botKey = created.body.apikey as string

  const one = await openBot(t, wsUrl, botKey)
  const two = await openBot(t, wsUrl, botKey)
  const other = await openBot(t, wsUrl, alice.key)
  await one.request({ type: 'subscribe' })

  const revoked = await api(url, 'DELETE', `/v1/users/me/keys/${created.body.id}`, { key: alice.key })
  t.equal(revoked.status, 204)
  for (const [name, bot] of [['first socket', one], ['second socket', two]] as const) {
    const closed = await bot.closed
    t.equal(closed.code, 4401, `${name} closed with Unauthorized`)
    t.equal(closed.reason, 'key_revoked')
    t.match(bot.unaddressed, [{ type: 'error', code: 'key_revoked' }], `${name} was told why`)
  }

  const still = await other.request({ type: 'balance' })
  t.equal(still.type, 'result', 'a socket with another key of the same user stays open')

  const again = await refusedStatus(wsUrl, { apikey: botKey })
  t.equal(again.status, 401)
  t.equal(again.body.error.code, 'key_revoked')
  t.equal(broker.services.hub.connections.size, 1)
})

t.test('a revocation written behind the process\'s back stops a busy session at its next batch', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  await registerUser(url, 'bob')
  await grant(broker, alice.id, 10)
  const bot = await openBot(t, wsUrl, alice.key)
  // As another broker process sharing the database would: a write to the store, no event here.
  const { store } = broker.services
  for (const key of await store.accounts.listKeys(alice.id)) await store.accounts.revokeKey(alice.id, key.id, Date.now())
  bot.send({ type: 'transfer', id: 'late', to: 'bob', amount: 1, idempotencyKey: 'after-revoke' })
  const closed = await bot.closed
  t.equal(closed.code, 4401)
  t.equal(bot.replies.size, 0, 'the queued transfer was not run')
  t.equal(await broker.services.store.audit.countTransfers(), 0, 'nothing moved')
})
