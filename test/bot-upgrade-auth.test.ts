import t from 'tap'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { openBot, refusedStatus } from './helpers/bot-client.js'

t.test('the bot channel authenticates on upgrade and greets with who and limits', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis, env: { BOT_MAX_IN_FLIGHT: '64', BOT_COMMANDS_PER_SECOND: '12.5', BOT_COMMAND_BURST: '30' } })
  const alice = await registerUser(url, 'alice')

  await t.test('no key, the Anonymous key, a wrong key: refused with 401 before any socket exists', async (t) => {
    for (const [name, headers] of [
      ['no key', {}],
      ['anonymous key', { apikey: '0000000000' }],
      ['wrong key', { apikey: 'hb_' + 'a'.repeat(12) + '_' + 'b'.repeat(32) }],
      ['garbage bearer', { authorization: 'Bearer nope' }],
    ] as Array<[string, Record<string, string>]>) {
      const refused = await refusedStatus(wsUrl, headers)
      t.equal(refused.status, 401, name)
      t.equal(refused.body.error.code, 'unauthorized', name)
    }
    t.equal(broker.services.hub.connections.size, 0, 'no connection was kept')
  })

  await t.test('a key without the read scope is refused with 403', async (t) => {
    const created = await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'worker-only', scopes: ['work'] } })
    const refused = await refusedStatus(wsUrl, { apikey: created.body.apikey })
    t.equal(refused.status, 403)
    t.equal(refused.body.error.code, 'insufficient_scope')
  })

  await t.test('the apikey header and Authorization: Bearer both open a session', async (t) => {
    for (const bearer of [false, true]) {
      const bot = await openBot(t, wsUrl, alice.key, { bearer })
      t.same(bot.ready, {
        type: 'ready',
        protocol: 1,
        user: { id: alice.id, username: 'alice' },
        scopes: ['read', 'transfer', 'generate', 'work'],
        limits: { max_in_flight: 64, commands_per_second: 12.5, burst: 30 },
      })
      const balance = await bot.request({ type: 'balance' })
      t.same(balance, { type: 'result', id: balance.id, command: 'balance', result: { id: alice.id, username: 'alice', kudos: 0 } })
      t.same(bot.invalid, [], 'every frame matches the protocol schemas')
      await bot.close()
    }
    t.equal(broker.services.hub.connections.size, 0, 'closed sockets leave the hub')
  })
})
