/**
 * Account happenings that cross processes: a key revoked on A closes the sockets it opened
 * on B and C within 2 s (client and bot channels) and is refused everywhere afterwards; a
 * transfer made on A reaches the subscribed bot of its receiver on B as an event.
 */
import t from 'tap'
import { createLedger } from '../../src/ledger/ledger.js'
import { toMilli } from '../../src/economy/amounts.js'
import { openBot } from '../helpers/bot-client.js'
import { eachStore, ws } from '../helpers/cluster.js'
import { openSideStore } from '../helpers/database.js'
import { auditDatabase } from '../helpers/faults.js'
import { client } from '../helpers/pipeline.js'
import { api, registerUser } from '../helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

eachStore(t, 'a key revoked on A closes its sockets on B and C within 2 s; refused everywhere after', 3, {}, async (t, cluster) => {
  const [a, b, c] = cluster.nodes
  const alice = await registerUser(a.url, 'revoke-alice')
  const created = await api(a.url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'second', scopes: ['read', 'transfer', 'generate'] } })
  t.equal(created.status, 201, 'a second key')
  const key = created.body.apikey as string
  const onB = await client(ws(b), key)
  const onC = await client(ws(c), key)
  const botOnC = await openBot(t, ws(c), key)
  const otherKey = await client(ws(b), alice.key)
  t.teardown(() => { onB.close(); onC.close(); otherKey.close() })

  const revokedAt = Date.now()
  const revoked = await api(a.url, 'DELETE', `/v1/users/me/keys/${created.body.id}`, { key: alice.key })
  t.equal(revoked.status, 204, 'revoked on A')
  for (const [name, closed] of [['client socket on B', onB.closed], ['client socket on C', onC.closed], ['bot socket on C', botOnC.closed]] as const) {
    const end = await Promise.race([closed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))])
    t.ok(end, `${name} closed`)
    const after = Date.now() - revokedAt
    t.equal(end?.code, 4401, `${name} closed with 4401`)
    t.equal(end?.reason, 'key_revoked', `${name}: key_revoked`)
    t.ok(after <= 2000, `${name} closed ${after} ms after the revocation (within 2 s)`)
  }
  t.equal(otherKey.ws.readyState, otherKey.ws.OPEN, 'a socket with another key of the same user stays open')
  for (const [name, node] of [['A', a], ['B', b], ['C', c]] as const) {
    const submit = await api(node.url, 'POST', '/v1/generate', { key, body: { prompt: 'hi', models: [MODEL] } })
    t.equal(submit.status, 401, `a submit with the revoked key is refused on ${name}`)
    t.equal(submit.body.error?.code, 'key_revoked', `on ${name}: key_revoked`)
  }
})

eachStore(t, 'a bot on B hears of a transfer made on A', 2, {}, async (t, cluster) => {
  const [a, b] = cluster.nodes
  const alice = await registerUser(a.url, 'bot-alice')
  const bob = await registerUser(b.url, 'bot-bob')
  const side = await openSideStore(cluster.database)
  await createLedger(side).award({ userId: alice.id, amount: toMilli(50), memo: 'test set-up' })
  await side.close()
  const bot = await openBot(t, ws(b), bob.key)
  const subscribed = await bot.request({ type: 'subscribe' })
  t.equal(subscribed.type, 'result', 'subscribed on B')
  const sent = await api(a.url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bot-bob', amount: 3.5, memo: 'cross' }, headers: { 'idempotency-key': 'cross-1' } })
  t.equal(sent.status, 201, `transfer made on A ${JSON.stringify(sent.body)}`)
  const event = await bot.nextEvent((e) => e.event === 'kudos_received', 10_000)
  t.equal(event.amount, 3.5, 'the event has the amount')
  t.equal(event.balance, 3.5, 'and the balance after it')
  t.equal(event.counterparty?.username, 'bot-alice', 'and who sent it')
  t.equal(event.memo, 'cross', 'and the memo')
  t.same(bot.invalid, [], 'every frame matches the protocol')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(bot.events.filter((e) => e.event === 'kudos_received').length, 1, 'the event came once')
  const report = await auditDatabase(cluster.database)
  t.ok(report.ok, `the ledger audits clean ${JSON.stringify(report.problems ?? [])}`)
})
