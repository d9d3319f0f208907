import t from 'tap'
import { api, balanceOf, grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

t.test('REST transfers follow the rules and never lose a kudo', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const bob = await registerUser(url, 'bob')
  const carol = await registerUser(url, 'carol')
  await grant(broker, alice.id, 100)

  const send = (key: string | undefined, body: unknown, idem?: string) =>
    api(url, 'POST', '/v1/kudos/transfers', { key, body, headers: idem ? { 'idempotency-key': idem } : {} })

  const snapshot = async () => ({
    balances: (await broker.services.store.audit.balances()).map((b) => ({ user_id: b.userId, balance: b.balance })),
    postings: (await broker.services.store.audit.counts()).postings,
    transfers: (await broker.services.store.audit.counts()).transfers,
  })

  await t.test('a valid transfer moves exactly the amount, by name or id', async (t) => {
    const first = await send(alice.key, { to: 'bob', amount: 12.5 }, 'k1')
    t.equal(first.status, 201)
    t.equal(first.body.amount, 12.5)
    t.equal(first.body.replayed, false)
    t.equal(await balanceOf(broker, alice.id), 87.5)
    t.equal(await balanceOf(broker, bob.id), 12.5)
    const byId = await send(alice.key, { to: carol.id, amount: '0.001' }, 'k2')
    t.equal(byId.status, 201)
    t.equal(await balanceOf(broker, carol.id), 0.001)
    const me = await api(url, 'GET', '/v1/users/me', { key: alice.key })
    t.equal(me.body.totals.sent, 12.501)
    t.equal(me.body.totals.awarded, 100)
  })

  await t.test('a retry with the same key and body returns the first result and moves nothing', async (t) => {
    const before = await snapshot()
    const again = await send(alice.key, { to: 'bob', amount: 12.5 }, 'k1')
    t.equal(again.status, 200)
    t.equal(again.body.replayed, true)
    t.same(await snapshot(), before)
  })

  await t.test('the same key with another body is a conflict and moves nothing', async (t) => {
    const before = await snapshot()
    const conflict = await send(alice.key, { to: 'bob', amount: 13 }, 'k1')
    t.equal(conflict.status, 409)
    t.equal(conflict.body.error.code, 'idempotency_conflict')
    t.same(await snapshot(), before)
  })

  const refused: Array<[string, string | undefined, unknown, string | undefined, number, string]> = [
    ['zero amount', alice.key, { to: 'bob', amount: 0 }, 'r1', 400, 'invalid_amount'],
    ['negative amount', alice.key, { to: 'bob', amount: -5 }, 'r2', 400, 'invalid_amount'],
    ['four decimals', alice.key, { to: 'bob', amount: 1.0001 }, 'r3', 400, 'invalid_amount'],
    ['not a number', alice.key, { to: 'bob', amount: 'lots' }, 'r4', 400, 'invalid_amount'],
    ['absurd amount', alice.key, { to: 'bob', amount: 1e30 }, 'r5', 400, 'amount_too_large'],
    ['boolean amount', alice.key, { to: 'bob', amount: true }, 'r6', 400, 'validation_failed'],
    ['to self', alice.key, { to: 'alice', amount: 1 }, 'r7', 400, 'self_transfer'],
    ['to Anonymous', alice.key, { to: 'Anonymous', amount: 1 }, 'r8', 403, 'anonymous_transfer'],
    ['from Anonymous', undefined, { to: 'bob', amount: 1 }, 'r9', 403, 'login_required'],
    ['from the anonymous key', '0000000000', { to: 'bob', amount: 1 }, 'r10', 403, 'login_required'],
    ['more than the balance', alice.key, { to: 'bob', amount: 1000 }, 'r11', 402, 'insufficient_kudos'],
    ['from a zero balance', carol.key, { to: 'bob', amount: 0.002 }, 'r12', 402, 'insufficient_kudos'],
    ['unknown recipient', alice.key, { to: 'nobody', amount: 1 }, 'r13', 404, 'unknown_user'],
    ['unknown recipient id', alice.key, { to: 999999, amount: 1 }, 'r14', 404, 'unknown_user'],
    ['no idempotency key', alice.key, { to: 'bob', amount: 1 }, undefined, 400, 'idempotency_key_required'],
    ['unknown field', alice.key, { to: 'bob', amount: 1, sneaky: true }, 'r15', 400, 'validation_failed'],
    ['missing recipient', alice.key, { amount: 1 }, 'r16', 400, 'validation_failed'],
    ['bad key', 'hb_xxxxxxxxxxxx_yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy', { to: 'bob', amount: 1 }, 'r17', 401, 'unauthorized'],
  ]
  for (const [name, key, body, idem, status, code] of refused) {
    await t.test(`refused: ${name}`, async (t) => {
      const before = await snapshot()
      const answer = await send(key, body, idem)
      t.equal(answer.status, status)
      t.equal(answer.body.error.code, code)
      t.type(answer.body.error.message, 'string')
      t.same(await snapshot(), before, 'nothing written')
    })
  }

  await t.test('malformed JSON and oversized bodies are refused with codes', async (t) => {
    const before = await snapshot()
    const bad = await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, raw: '{"to": "bob", ', headers: { 'idempotency-key': 'm1' } })
    t.equal(bad.status, 400)
    t.equal(bad.body.error.code, 'invalid_json')
    const huge = await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, raw: JSON.stringify({ to: 'bob', amount: 1, memo: 'x'.repeat(400_000) }), headers: { 'idempotency-key': 'm2' } })
    t.equal(huge.status, 413)
    t.equal(huge.body.error.code, 'payload_too_large')
    const text = await api(url, 'POST', '/v1/kudos/transfers', { key: alice.key, raw: 'to=bob', headers: { 'idempotency-key': 'm3', 'content-type': 'text/plain' } })
    t.equal(text.status, 415)
    t.same(await snapshot(), before)
  })

  const invariant = await ledgerInvariant(broker)
  t.equal(invariant.sumBalances, invariant.minted, 'sum of balances equals what was minted')
})

t.test('200 concurrent transfers between a few users keep the invariant and never overdraw', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const users = await Promise.all(['u1', 'u2', 'u3', 'u4'].map((name) => registerUser(url, name)))
  await grant(broker, users[0].id, 50)
  await grant(broker, users[1].id, 20)
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => {
    const from = users[i % 4]
    const to = users[(i * 7 + 1) % 4 === i % 4 ? (i + 1) % 4 : (i * 7 + 1) % 4]
    return api(url, 'POST', '/v1/kudos/transfers', { key: from.key, body: { to: to.username, amount: 3 }, headers: { 'idempotency-key': `c${i}` } })
  }))
  const ok = answers.filter((a) => a.status === 201).length
  const poor = answers.filter((a) => a.status === 402).length
  t.equal(ok + poor, 200, 'every transfer either moved or was refused for lack of kudos')
  t.ok(ok > 0, 'some transfers went through')
  for (const user of users) t.ok((await balanceOf(broker, user.id)) >= 0, `${user.username} never overdrawn by transfers`)
  const invariant = await ledgerInvariant(broker)
  t.equal(invariant.sumBalances, invariant.minted)
  t.equal(invariant.minted, 70_000)
  // The audit replays every balance (and each category total) from its postings.
  const report = await broker.services.store.audit.run()
  t.same(report.problems, [], 'balance equals the replay of its postings')
})
