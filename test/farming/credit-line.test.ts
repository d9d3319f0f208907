/**
 * Debt beyond the credit line: a username-only throwaway keeps requesting from an honest
 * worker. It is still served and its debt still grows by the full formula, but past its
 * credit line (KUDOS_USER_CREDIT) the matching credit goes to the system account
 * `horde:unfunded`, not to the worker. The books balance and the audit knows the rule.
 */
import t from 'tap'
import { UNFUNDED_ID } from '../../src/economy/anonymous.js'
import { toKudos } from '../../src/economy/amounts.js'
import { ledgerInvariant, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, submit } from '../helpers/pipeline.js'
import { MID, earnedByGeneration, formulaMilli, settledOf, streamAt } from '../helpers/farm.js'

t.test('past its credit line a payer\'s debt grows, and the credit goes to the system account', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis, env: { KUDOS_USER_CREDIT: '8' } })
  const farmer = await registerUser(url, 'farmer')
  const throwaway = await registerUser(url, 'throwaway')
  const worker = await rawWorker(wsUrl, farmer.key, { name: 'honest', models: [MID], max_length: 256, max_context_length: 4096 })
  const submitter = await client(wsUrl, throwaway.key)
  t.teardown(() => { worker.close(); submitter.close() })

  const text = 'd'.repeat(160) // 40 tokens at an honest 80 tokens/s
  const reward = formulaMilli({ model: MID, chars: text.length, prompt: 'hello', maxLength: 256, requestContext: 1024, workerContext: 4096 })
  const line = 8000
  const jobs = 5
  t.ok(reward * jobs > 2 * line, `${jobs} jobs of ${toKudos(reward)} kudos go well past the 8-kudo line`)
  let charged = 0
  let funded = 0
  for (let i = 0; i < jobs; i++) {
    const request = await submit(submitter, { prompt: 'hello', models: [MID], max_length: 256, max_context_length: 1024 })
    const job = (await worker.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    await streamAt(worker, job, text, 80)
    const done = await submitter.next((f) => f.type === 'done' && f.request === request, 15_000)
    const settled = await settledOf(worker, job)
    const expectedFunded = Math.min(reward, Math.max(0, line - charged))
    t.equal(done.kudos, toKudos(reward), `job ${i + 1}: still served, and charged the formula`)
    t.equal(settled.kudos, toKudos(expectedFunded), `job ${i + 1}: the worker gets ${toKudos(expectedFunded)}, what the line still funds`)
    charged += reward
    funded += expectedFunded
  }
  t.equal((await broker.services.ledger.account(throwaway.id))!.balance, -charged, 'the requester\'s debt grew by every charge')
  t.equal(await earnedByGeneration(broker, farmer.id), line, 'the worker earned exactly the credit line')
  t.equal(funded, line)
  const system = await broker.services.ledger.account(UNFUNDED_ID)
  t.match(system, { balance: charged - line, unfunded: charged - line }, 'the rest sits on horde:unfunded, in its unfunded category')
  t.equal((await broker.services.store.accounts.byId(UNFUNDED_ID))?.username, 'horde:unfunded')
  const audit = await ledgerInvariant(broker)
  t.same(audit.problems, [], 'the audit knows the rule')
  t.equal(audit.sumBalances, audit.minted, 'the books balance')
})
