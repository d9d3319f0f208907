import t from 'tap'
import { api, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('balance, account, ledger and find_user answer like REST', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const bob = await registerUser(url, 'Bob')
  await grant(broker, alice.id, 30)
  const bot = await openBot(t, wsUrl, alice.key)
  for (let i = 0; i < 5; i++) {
    const sent = await bot.request({ type: 'transfer', to: i % 2 ? bob.id : 'bob', amount: i + 1, idempotencyKey: `q${i}`, memo: `n${i}` })
    t.equal(sent.type, 'result')
  }

  const balance = await bot.request({ type: 'balance' })
  t.same(balance.type === 'result' && balance.result, { id: alice.id, username: 'alice', kudos: 15 })

  const account = await bot.request({ type: 'account' })
  const me = await api(url, 'GET', '/v1/users/me', { key: alice.key })
  t.equal(account.type, 'result')
  if (account.type === 'result') {
    const { anonymous, ...rest } = me.body
    t.equal(anonymous, false)
    t.same(account.result, rest, 'the same fields as GET /v1/users/me')
    t.same(account.result.totals, { earned_generation: 0, earned_uptime: 0, spent: 0, sent: 15, received: 0, awarded: 30 })
  }

  // Six postings (one award, five sent), paged three at a time, newest first.
  const page1 = await bot.request({ type: 'ledger', limit: 3 })
  t.equal(page1.type, 'result')
  if (page1.type !== 'result') return
  t.same(page1.result.entries.map((e: { amount: number }) => e.amount), [-5, -4, -3])
  t.match(page1.result.entries[0], { kind: 'transfer', category: 'sent', counterparty_id: bob.id, memo: 'n4' })
  const rest1 = await api(url, 'GET', '/v1/users/me/ledger?limit=3', { key: alice.key })
  t.same(page1.result, rest1.body, 'the same page as REST')
  const page2 = await bot.request({ type: 'ledger', limit: 3, before: page1.result.next_before })
  t.same(page2.type === 'result' && page2.result.entries.map((e: { amount: number }) => e.amount), [-2, -1, 30])
  const page3 = await bot.request({ type: 'ledger', limit: 3, before: page2.type === 'result' ? page2.result.next_before : 0 })
  t.same(page3.type === 'result' && page3.result, { entries: [], next_before: null }, 'the end')
  const all = await bot.request({ type: 'ledger' })
  t.same(all.type === 'result' && [all.result.entries.length, all.result.next_before], [6, null], 'default page')

  const byName = await bot.request({ type: 'find_user', user: 'BOB' })
  const restUser = await api(url, 'GET', '/v1/users/bob')
  t.same(byName.type === 'result' && byName.result, restUser.body, 'names match without case, like REST')
  const byId = await bot.request({ type: 'find_user', user: bob.id })
  const byDigits = await bot.request({ type: 'find_user', user: String(bob.id) })
  t.same(byId.type === 'result' && byId.result, restUser.body)
  t.same(byDigits.type === 'result' && byDigits.result, restUser.body)
  t.same(bot.invalid, [])
})
