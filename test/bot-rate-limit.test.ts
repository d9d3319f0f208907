import t from 'tap'
import { KeyedTokenBuckets } from '../src/gateway/token-bucket.js'
import { api, registerUser, sleep, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('token buckets: burst, refill, retry hint, sweep', async (t) => {
  let now = 0
  const buckets = new KeyedTokenBuckets<string>({ rate: 2, burst: 3 }, () => now)
  t.same([1, 2, 3].map(() => buckets.take('a').ok), [true, true, true], 'a full burst')
  t.same(buckets.take('a'), { ok: false, retryAfterMs: 500 }, 'then a wait of one token at 2/s')
  t.ok(buckets.take('b').ok, 'keys do not share')
  now = 250
  t.same(buckets.take('a'), { ok: false, retryAfterMs: 250 })
  now = 500
  t.ok(buckets.take('a').ok, 'refilled one token')
  now = 100_000
  t.equal(buckets.size, 2)
  buckets.sweep()
  t.equal(buckets.size, 0, 'full buckets are forgotten')
  t.ok(buckets.take('a').ok)
})

t.test('the bot channel limits commands per key', async (t) => {
  const redis = await startTestRedis(t)
  // One token every 2 s: opening the second socket below (a key lookup, on PostgreSQL too) must
  // not refill the bucket on a loaded machine before that socket's command arrives.
  const { url, wsUrl } = await startBroker(t, { redis, env: { BOT_COMMANDS_PER_SECOND: '0.5', BOT_COMMAND_BURST: '10' } })
  const alice = await registerUser(url, 'alice')
  const bob = await registerUser(url, 'bob')
  const bot = await openBot(t, wsUrl, alice.key)
  t.same(bot.ready.limits, { max_in_flight: 256, commands_per_second: 0.5, burst: 10 })

  for (let i = 0; i < 30; i++) bot.send({ type: 'balance', id: i })
  const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => bot.reply(i)))
  const ok = replies.filter((r) => r.type === 'result').length
  const limited = replies.filter((r) => r.type === 'error' && r.code === 'too_many_requests')
  // The 30 frames normally arrive in one read; a slow machine may refill a token or two meanwhile.
  t.ok(ok >= 10 && ok <= 11, `the burst went through (${ok})`)
  t.equal(ok + limited.length, 30, 'the rest were refused with a code')
  const hint = limited[0] as { retry_after_ms?: number }
  t.ok(hint.retry_after_ms! > 0 && hint.retry_after_ms! <= 2000, `retry_after_ms ${hint.retry_after_ms}`)

  const sameKey = await openBot(t, wsUrl, alice.key)
  t.match(await sameKey.request({ type: 'balance' }), { type: 'error', code: 'too_many_requests' }, 'a second socket shares the key\'s bucket')
  const otherUser = await openBot(t, wsUrl, bob.key)
  t.match(await otherUser.request({ type: 'balance' }), { type: 'result' }, 'another key has its own')
  const otherKey = await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'second', scopes: ['read'] } })
  const aliceSecond = await openBot(t, wsUrl, otherKey.body.apikey)
  t.match(await aliceSecond.request({ type: 'balance' }), { type: 'result' }, 'the limit is per key, not per user')

  await sleep(hint.retry_after_ms! + 50)
  t.match(await bot.request({ type: 'balance' }), { type: 'result' }, 'after the hinted wait a command is accepted')
  t.equal(bot.ws.readyState, bot.ws.OPEN, 'rate limiting does not close the socket')
})
