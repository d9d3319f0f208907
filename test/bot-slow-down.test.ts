import t from 'tap'
import { grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('over the in-flight cap, commands are answered slow_down, never dropped', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { BOT_MAX_IN_FLIGHT: '4', BOT_BATCH_SIZE: '2', BOT_COMMAND_BURST: '10000' } })
  const alice = await registerUser(url, 'alice')
  await registerUser(url, 'bob')
  await grant(broker, alice.id, 1000)
  const bot = await openBot(t, wsUrl, alice.key)
  t.equal(bot.ready.limits.max_in_flight, 4)

  // 300 in one go: far more than the cap, and more than the 100 bad frames that would close a socket.
  const count = 300
  for (let i = 0; i < count; i++) bot.send({ type: 'transfer', id: i, to: 'bob', amount: 1, idempotencyKey: `sd-${i}` })
  const replies = await Promise.all(Array.from({ length: count }, (_, i) => bot.reply(i)))
  t.ok([...bot.replies.values()].every((list) => list.length === 1), 'each command answered exactly once')
  const moved = replies.filter((r) => r.type === 'result')
  const slowed = replies.filter((r) => r.type === 'error' && r.code === 'slow_down')
  t.equal(moved.length + slowed.length, count, 'moved or slow_down, nothing else')
  t.ok(slowed.length > 0, `${slowed.length} told to slow down`)
  t.ok(moved.length >= 4, `${moved.length} accepted`)
  t.match(slowed[0], { type: 'error', code: 'slow_down', message: /in flight/ })
  t.equal(await broker.services.store.audit.countTransfers(), moved.length, 'a slowed command moved nothing')
  t.equal(bot.ws.readyState, bot.ws.OPEN, 'slow_down is not a protocol violation')

  // A client that keeps within the cap is never slowed down.
  for (let round = 0; round < 5; round++) {
    const ids = [0, 1, 2, 3].map((k) => `w${round}-${k}`)
    for (const id of ids) bot.send({ type: 'balance', id })
    const answers = await Promise.all(ids.map((id) => bot.reply(id)))
    t.ok(answers.every((a) => a.type === 'result'), `round ${round}: 4 in flight, all accepted`)
  }
})
