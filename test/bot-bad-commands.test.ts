import t from 'tap'
import { balanceOf, grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot } from './helpers/bot-client.js'

t.test('bad commands get coded errors and move nothing', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { KUDOS_MAX_TRANSFER: '1000000' } })
  const alice = await registerUser(url, 'alice')
  await registerUser(url, 'bob')
  await grant(broker, alice.id, 100)
  const bot = await openBot(t, wsUrl, alice.key)

  const snapshot = async () => ({
    balances: await broker.services.store.audit.balances(),
    postings: (await broker.services.store.audit.counts()).postings,
    transfers: (await broker.services.store.audit.counts()).transfers,
  })
  const before = await snapshot()
  const ok = { type: 'transfer', to: 'bob', amount: 1, idempotencyKey: 'k' }

  // [name, frame, code, answered with the id?]
  let n = 0
  const cases: Array<[string, unknown, string, boolean]> = [
    ['unknown command', { type: 'steal', id: ++n }, 'unknown_type', true],
    ['transfer without an id', { ...ok }, 'validation_failed', false],
    ['balance without an id', { type: 'balance' }, 'validation_failed', false],
    ['an empty id', { type: 'balance', id: '' }, 'validation_failed', false],
    ['an object id', { type: 'balance', id: { x: 1 } }, 'validation_failed', false],
    ['a negative id', { type: 'balance', id: -1 }, 'validation_failed', false],
    ['four decimals', { ...ok, id: ++n, amount: 1.0001 }, 'invalid_amount', true],
    ['four decimals as text', { ...ok, id: ++n, amount: '1.2345' }, 'invalid_amount', true],
    ['a word for an amount', { ...ok, id: ++n, amount: 'lots' }, 'invalid_amount', true],
    ['zero', { ...ok, id: ++n, amount: 0 }, 'invalid_amount', true],
    ['negative', { ...ok, id: ++n, amount: -5 }, 'invalid_amount', true],
    ['hex', { ...ok, id: ++n, amount: '0x10' }, 'invalid_amount', true],
    ['a huge number', { ...ok, id: ++n, amount: 1e30 }, 'amount_too_large', true],
    ['a huge decimal string', { ...ok, id: ++n, amount: '99999999999999999999' }, 'amount_too_large', true],
    ['over the configured maximum', { ...ok, id: ++n, amount: 1_000_001 }, 'amount_too_large', true],
    ['a boolean amount', { ...ok, id: ++n, amount: true }, 'validation_failed', true],
    ['a null amount', { ...ok, id: ++n, amount: null }, 'validation_failed', true],
    ['a 41-character amount', { ...ok, id: ++n, amount: '1'.repeat(41) }, 'validation_failed', true],
    ['a memo over 500 characters', { ...ok, id: ++n, memo: 'm'.repeat(501) }, 'validation_failed', true],
    ['a numeric memo', { ...ok, id: ++n, memo: 5 }, 'validation_failed', true],
    ['no idempotency key', { type: 'transfer', id: ++n, to: 'bob', amount: 1 }, 'validation_failed', true],
    ['an empty idempotency key', { ...ok, id: ++n, idempotencyKey: '' }, 'validation_failed', true],
    ['a 201-character idempotency key', { ...ok, id: ++n, idempotencyKey: 'k'.repeat(201) }, 'validation_failed', true],
    ['an unknown field', { ...ok, id: ++n, sneaky: true }, 'validation_failed', true],
    ['an object recipient', { ...ok, id: ++n, to: { id: 2 } }, 'validation_failed', true],
    ['to oneself', { ...ok, id: ++n, to: 'alice' }, 'self_transfer', true],
    ['to Anonymous', { ...ok, id: ++n, to: 'Anonymous' }, 'anonymous_transfer', true],
    ['to nobody', { ...ok, id: ++n, to: 'nobody' }, 'unknown_user', true],
    ['to an unknown id', { ...ok, id: ++n, to: 999 }, 'unknown_user', true],
    ['more than the balance', { ...ok, id: ++n, amount: 100.001 }, 'insufficient_kudos', true],
    ['ledger limit 0', { type: 'ledger', id: ++n, limit: 0 }, 'validation_failed', true],
    ['ledger limit 501', { type: 'ledger', id: ++n, limit: 501 }, 'validation_failed', true],
    ['find_user without a user', { type: 'find_user', id: ++n }, 'validation_failed', true],
    ['find_user of nobody', { type: 'find_user', id: ++n, user: 'ghost' }, 'unknown_user', true],
    ['a frame that is an array', [1, 2], 'validation_failed', false],
    ['a frame without a type', { id: ++n }, 'validation_failed', false],
  ]
  for (const [name, frame, code, withId] of cases) {
    const id = (frame as { id?: string | number }).id
    const unaddressedBefore = bot.unaddressed.length
    bot.send(frame as object)
    let reply: any
    if (withId && id !== undefined) reply = await bot.reply(id)
    else {
      // An error without a usable id: wait for it among the unaddressed frames.
      const deadline = Date.now() + 2000
      while (bot.unaddressed.length === unaddressedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      reply = bot.unaddressed.at(-1)
      t.equal(reply?.id, undefined, `${name}: answered without an id`)
    }
    t.equal(reply?.type, 'error', name)
    t.equal(reply?.code, code, `${name} -> ${code}`)
    t.type(reply?.message, 'string')
  }

  const poorId = (cases.find(([name]) => name === 'more than the balance')![1] as { id: number }).id
  t.same(bot.replies.get(poorId)?.[0], { type: 'error', id: poorId, code: 'insufficient_kudos', message: 'Amount exceeds your positive balance', details: { balance: 100, amount: 100.001 } }, 'insufficient_kudos says how much there is')

  await t.test('malformed frames are answered too', async (t) => {
    const count = bot.unaddressed.length
    bot.send('{"type": "balance", ')
    bot.ws.send(Buffer.from([1, 2, 3]), { binary: true })
    const deadline = Date.now() + 2000
    while (bot.unaddressed.length < count + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    t.match(bot.unaddressed.slice(count), [{ code: 'invalid_json' }, { code: 'bad_request' }])
  })

  t.same(await snapshot(), before, 'nothing written by any of them')
  t.equal(await balanceOf(broker, alice.id), 100)
  const invariant = await ledgerInvariant(broker)
  t.equal(invariant.sumBalances, invariant.minted)
  t.same(bot.invalid, [], 'every error frame matches the schema')

  await t.test('a good command still works on the same socket', async (t) => {
    t.match(await bot.request({ ...ok, idempotencyKey: 'finally' }), { type: 'result', result: { amount: 1 } })
  })

  await t.test('a flood of malformed frames closes the socket with 4400', async (t) => {
    for (let i = 0; i < 120; i++) bot.send('nope')
    const closed = await bot.closed
    t.equal(closed.code, 4400)
  })
})
