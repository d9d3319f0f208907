/**
 * Fault: a client retries one transfer ten times at once with one idempotency key, the
 * broker is killed (SIGKILL) while the first burst is in flight, and the client retries
 * ten more times against the restarted broker. Exactly one transfer exists, the balances
 * moved once, and the ledger audit passes.
 */
import t from 'tap'
import { createLedger } from '../../src/ledger/ledger.js'
import { toMilli } from '../../src/economy/amounts.js'
import { openSideStore, withAudit } from '../helpers/database.js'
import { auditDatabase, writeFigures } from '../helpers/faults.js'
import { api, registerUser, startTestRedis } from '../helpers/harness.js'
import { startBrokerProcess } from '../helpers/processes.js'

const BURST = 10
const AMOUNT = 7.5
const KEY = 'pay-bob-for-the-story'

t.test('a transfer retried 10 + 10 times with one key, across a kill -9: one transfer, moved once, audit ok', async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const alice = await registerUser(broker.url, 'alice')
  const bob = await registerUser(broker.url, 'bob')
  // Alice's starting kudos: an award, posted through the ledger on the broker's own database
  // (SQLite in WAL mode: a second writer process waits for the lock rather than failing).
  const side = await openSideStore(broker.database)
  await createLedger(side).award({ userId: alice.id, amount: toMilli(100), memo: 'test set-up' })
  await side.close()

  const send = () => api(broker.url, 'POST', '/v1/kudos/transfers', {
    key: alice.key, body: { to: 'bob', amount: AMOUNT, memo: 'thanks' }, headers: { 'idempotency-key': KEY },
  }).catch((error: Error) => ({ status: 0, body: { error: error.message } }))

  // Burst one: ten at once; the broker dies as soon as the first answer is back.
  const first = Array.from({ length: BURST }, send)
  await Promise.race(first)
  await broker.kill()
  const firstAnswers = await Promise.all(first)
  await broker.restart()
  const secondAnswers = await Promise.all(Array.from({ length: BURST }, send))

  const answers = [...firstAnswers, ...secondAnswers]
  const answered = answers.filter((a) => a.status === 200 || a.status === 201)
  const lost = answers.filter((a) => a.status === 0)
  t.ok(answers.every((a) => [0, 200, 201].includes(a.status)), `only successes or lost answers: ${JSON.stringify(answers.map((a) => a.status))}`)
  t.ok(answers.filter((a) => a.status === 201).length <= 1, 'at most one answer says it moved kudos')
  t.equal(secondAnswers.filter((a) => a.status === 200 && a.body.replayed === true).length, BURST, 'every retry after the restart is a replay')
  t.equal(new Set(answered.map((a) => a.body.id)).size, 1, 'every answer names the same transfer')

  const alicesView = await api(broker.url, 'GET', '/v1/users/me', { key: alice.key })
  const bobsView = await api(broker.url, 'GET', '/v1/users/me', { key: bob.key })
  t.equal(alicesView.body.kudos, 100 - AMOUNT, 'the sender paid once')
  t.equal(bobsView.body.kudos, AMOUNT, 'the recipient received once')

  // The same key with other content is refused and moves nothing, after the restart too.
  const conflict = await api(broker.url, 'POST', '/v1/kudos/transfers', { key: alice.key, body: { to: 'bob', amount: 1 }, headers: { 'idempotency-key': KEY } })
  t.equal(conflict.status, 409)

  const [rows, entries] = await withAudit(broker.database, async (audit) => [await audit.countTransfers(KEY), await audit.countEntries('transfer')])
  t.equal(rows, 1, 'one transfers row')
  t.equal(entries, 1, 'one transfer entry in the ledger')
  const report = await auditDatabase(broker.database)
  t.ok(report.ok, report.problems.join('\n') || 'audit ok')
  writeFigures({
    name: 'transfer-retries', file: 'test/faults/transfer-retries.test.ts',
    injects: `${BURST} concurrent retries, SIGKILL of the broker mid-burst, restart, ${BURST} more retries (one key)`,
    faults: 1, accepted: answered.length, done: answered.length, failed: 0, stuck: 0, settlements: entries, doubleSettled: entries > 1 ? 1 : 0,
    audit: report.ok ? 'ok' : `FAILED: ${report.problems.length} problem(s)`,
    notes: `transfer calls: ${answers.length} sent, ${answered.length} answered 200/201, ${lost.length} lost in the kill; 1 transfer row; balances moved once`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
