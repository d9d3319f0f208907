import t from 'tap'
import { api, balanceOf, grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('one idempotency key, sent twice on the bot channel and once on REST: one transfer', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const bob = await registerUser(url, 'bob')
  await grant(broker, alice.id, 50)
  const bot = await openBot(t, wsUrl, alice.key)
  const transferCount = () => broker.services.store.audit.countTransfers()

  // Both bot copies in flight at once: the second must see the first's row, not move twice.
  bot.send({ type: 'transfer', id: 'a', to: 'bob', amount: '7.25', idempotencyKey: 'shared-1', memo: 'thanks' })
  bot.send({ type: 'transfer', id: 'b', to: 'bob', amount: 7.25, idempotencyKey: 'shared-1', memo: 'thanks' })
  const [first, second] = await Promise.all([bot.reply('a'), bot.reply('b')])
  t.equal(first.type, 'result')
  t.equal(second.type, 'result')
  if (first.type !== 'result' || second.type !== 'result') return
  t.equal(first.result.replayed, false)
  t.equal(second.result.replayed, true)
  t.equal(second.result.id, first.result.id, 'the same transfer')
  t.same(first.result.to, { id: bob.id, username: 'bob' })
  t.equal(first.result.amount, 7.25)
  t.equal(first.result.memo, 'thanks')

  const rest = await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 7.25, memo: 'thanks' }, headers: { 'idempotency-key': 'shared-1' } })
  t.equal(rest.status, 200, 'REST sees the bot\'s transfer as a replay')
  t.equal(rest.body.replayed, true)
  t.equal(rest.body.id, first.result.id)
  t.same({ ...rest.body, replayed: false }, first.result, 'both doors show the transfer alike')

  t.equal(await transferCount(), 1)
  t.equal(await balanceOf(broker, alice.id), 42.75)
  t.equal(await balanceOf(broker, bob.id), 7.25)

  // The other way round: REST first, then the bot, and a conflicting reuse.
  const viaRest = await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 1 }, headers: { 'idempotency-key': 'shared-2' } })
  t.equal(viaRest.status, 201)
  const replay = await bot.request({ type: 'transfer', to: 'bob', amount: 1, idempotencyKey: 'shared-2' })
  t.equal(replay.type === 'result' && replay.result.replayed, true)
  const conflict = await bot.request({ type: 'transfer', to: 'bob', amount: 2, idempotencyKey: 'shared-2' })
  t.equal(conflict.type === 'error' && conflict.code, 'idempotency_conflict')
  t.equal(await transferCount(), 2)
  t.equal(await balanceOf(broker, bob.id), 8.25)

  // Keys belong to their sender: bob may use the same text for his own transfer.
  const bobBot = await openBot(t, wsUrl, bob.key)
  const bobs = await bobBot.request({ type: 'transfer', to: 'alice', amount: 1, idempotencyKey: 'shared-1' })
  t.equal(bobs.type === 'result' && bobs.result.replayed, false)
  t.equal(await transferCount(), 3)

  const invariant = await ledgerInvariant(broker)
  t.equal(invariant.sumBalances, invariant.minted)
  t.same(bot.invalid, [])
})
