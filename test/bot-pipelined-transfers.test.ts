import t from 'tap'
import { balanceOf, grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('1,000 transfers pipelined over one bot socket: each answered once, nothing lost', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { BOT_MAX_IN_FLIGHT: '1000', BOT_COMMAND_BURST: '1000', BOT_COMMANDS_PER_SECOND: '1000' } })
  const bot = await registerUser(url, 'tipbot')
  const users = await Promise.all(['ann', 'ben', 'cat', 'dan'].map((name) => registerUser(url, name)))
  await grant(broker, bot.id, 400)

  const client = await openBot(t, wsUrl, bot.key)
  const count = 1000
  const sent = Date.now()
  // All at once, without waiting: the recipient rotates, amounts vary, ids are numbers and strings.
  for (let i = 0; i < count; i++) {
    client.send({ type: 'transfer', id: i % 2 ? i : `t${i}`, to: i % 5 === 4 ? users[i % 4].id : users[i % 4].username, amount: ((i % 7) + 1) / 10, idempotencyKey: `pipe-${i}`, memo: `tip ${i}` })
  }
  const replies = await Promise.all(Array.from({ length: count }, (_, i) => client.reply(i % 2 ? i : `t${i}`, 30_000)))
  t.comment(`${count} transfers answered in ${Date.now() - sent} ms`)

  t.equal(client.replies.size, count, 'one reply per id')
  t.ok([...client.replies.values()].every((list) => list.length === 1), 'no command answered twice')
  t.same(client.invalid, [], 'every reply matches its schema')
  const moved = replies.filter((r) => r.type === 'result')
  const poor = replies.filter((r) => r.type === 'error' && r.code === 'insufficient_kudos')
  t.equal(moved.length + poor.length, count, 'each one moved or was refused for lack of kudos')
  // 1,000 transfers of 0.1..0.7 sum to about 400: the grant runs out near the end.
  t.ok(moved.length > 900, `most moved (${moved.length})`)

  const total = moved.reduce((sum, r) => sum + Math.round((r as { result: { amount: number } }).result.amount * 1000), 0)
  t.equal(Math.round((await balanceOf(broker, bot.id)) * 1000), 400_000 - total, 'the bot paid exactly what the results say')
  const received = await Promise.all(users.map((u) => balanceOf(broker, u.id)))
  t.equal(received.reduce((sum, kudos) => sum + Math.round(kudos * 1000), 0), total, 'recipients got exactly that')
  t.ok((await balanceOf(broker, bot.id)) >= 0, 'never overdrawn')

  const { audit } = broker.services.store
  t.equal(await audit.countTransfers(), moved.length, 'one transfer row per result')
  const invariant = await ledgerInvariant(broker)
  t.equal(invariant.sumBalances, invariant.minted, 'sum of balances equals what was minted')
  // The audit replays every balance (and each category total) from its postings.
  const report = await audit.run()
  t.same(report.problems, [], 'every balance equals the replay of its postings')

  const balance = await client.request({ type: 'balance' })
  t.equal(balance.type === 'result' && balance.result.kudos, await balanceOf(broker, bot.id), 'the channel still answers')
})
