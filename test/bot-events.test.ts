import t from 'tap'
import { api, grant, registerUser, sleep, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('a subscribed bot sees its account events as they happen', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const bob = await registerUser(url, 'bob')
  await grant(broker, alice.id, 20)
  const bobBot = await openBot(t, wsUrl, bob.key)
  const onlooker = await openBot(t, wsUrl, alice.key)

  const subscribed = await bobBot.request({ type: 'subscribe' })
  t.same(subscribed.type === 'result' && subscribed.result, { subscribed: true })

  await t.test('a transfer from another user arrives within the same second', async (t) => {
    const started = Date.now()
    const sent = await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 3.5, memo: 'for the docs' }, headers: { 'idempotency-key': 'ev-1' } })
    t.equal(sent.status, 201)
    const event = await bobBot.nextEvent((e) => e.event === 'kudos_received', 1000)
    const latency = Date.now() - started
    t.ok(latency < 1000, `event ${latency} ms after the transfer started`)
    t.match(event, {
      type: 'event',
      event: 'kudos_received',
      amount: 3.5,
      balance: 3.5,
      counterparty: { id: alice.id, username: 'alice' },
      memo: 'for the docs',
      ref: `${alice.id}:ev-1`,
    })
    t.ok(Number.isInteger(event.entry_id))
    t.ok(Math.abs(Date.parse(event.at) - Date.now()) < 5000)
  })

  await t.test('the bot\'s own transfer and an award show up; other users\' events do not', async (t) => {
    const mine = await bobBot.request({ type: 'transfer', to: 'alice', amount: 1, idempotencyKey: 'ev-2' })
    t.equal(mine.type, 'result')
    const sent = await bobBot.nextEvent((e) => e.event === 'kudos_sent')
    t.match(sent, { amount: -1, balance: 2.5, counterparty: { username: 'alice' }, memo: null })
    await grant(broker, bob.id, 10)
    const awarded = await bobBot.nextEvent((e) => e.event === 'kudos_awarded')
    t.match(awarded, { amount: 10, balance: 12.5, counterparty: null })
    await grant(broker, alice.id, 5)
    await sleep(50)
    t.equal(bobBot.events.length, 3, 'nothing about alice\'s award')
    t.equal(onlooker.events.length, 0, 'a bot that did not subscribe gets no events')
  })

  await t.test('after unsubscribe nothing more arrives', async (t) => {
    const off = await bobBot.request({ type: 'unsubscribe' })
    t.same(off.type === 'result' && off.result, { subscribed: false })
    await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 1 }, headers: { 'idempotency-key': 'ev-3' } })
    await sleep(50)
    t.equal(bobBot.events.length, 3)
  })

  await t.test('two sockets of one user both receive, and a closed one is forgotten', async (t) => {
    const second = await openBot(t, wsUrl, bob.key)
    await bobBot.request({ type: 'subscribe' })
    await second.request({ type: 'subscribe' })
    await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 2 }, headers: { 'idempotency-key': 'ev-4' } })
    const [one, two] = await Promise.all([bobBot.nextEvent((e) => e.amount === 2), second.nextEvent((e) => e.amount === 2)])
    t.equal(one.balance, 15.5)
    t.same(two, one, 'the same event on both sockets')
    await second.close()
    await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 4 }, headers: { 'idempotency-key': 'ev-5' } })
    const later = await bobBot.nextEvent((e) => e.amount === 4)
    t.equal(later.balance, 19.5)
    t.equal(second.events.length, 1)
  })

  t.same(bobBot.invalid, [], 'every event matches the schema')
})
