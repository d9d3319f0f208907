import t from 'tap'
import { api, balanceOf, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('only a key with the transfer scope can transfer over the bot channel', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  await registerUser(url, 'bob')
  await grant(broker, alice.id, 10)
  const newKey = async (scopes: string[]) => (await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: scopes.join('+'), scopes } })).body.apikey as string

  const reader = await openBot(t, wsUrl, await newKey(['read']))
  t.same(reader.ready.scopes, ['read'])
  const refused = await reader.request({ type: 'transfer', to: 'bob', amount: 1, idempotencyKey: 'scope-1' })
  t.match(refused, { type: 'error', code: 'insufficient_scope' })
  t.equal(await balanceOf(broker, alice.id), 10, 'nothing moved')
  t.equal(await broker.services.store.audit.countTransfers(), 0)
  const balance = await reader.request({ type: 'balance' })
  t.match(balance, { type: 'result', result: { kudos: 10 } }, 'a read key still reads')
  t.equal(reader.ws.readyState, reader.ws.OPEN, 'a refused command does not close the socket')

  const payer = await openBot(t, wsUrl, await newKey(['read', 'transfer']))
  const paid = await payer.request({ type: 'transfer', to: 'bob', amount: 1, idempotencyKey: 'scope-1' })
  t.match(paid, { type: 'result', result: { amount: 1, replayed: false } }, 'the same key text works with the transfer scope: the refusal used nothing up')
  t.equal(await balanceOf(broker, alice.id), 9)
})
