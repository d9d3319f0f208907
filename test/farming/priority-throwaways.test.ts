/**
 * A worker listing throwaway accounts in `priority_usernames` served them first and minted
 * from their debt. Preference still serves them first, but a job given to the worker's owner
 * or one of its priority users moves at most what the payer holds above zero: nothing is
 * minted through preference. A stranger on the same worker pays the formula as before.
 */
import t from 'tap'
import { toKudos } from '../../src/economy/amounts.js'
import { grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, submit } from '../helpers/pipeline.js'
import { MID, earnedByGeneration, formulaMilli, settledOf, streamAt } from '../helpers/farm.js'

t.test('priority throwaways are served for free beyond what they hold: nothing minted', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const farmer = await registerUser(url, 'farmer')
  const throwaways = await Promise.all(['tw-1', 'tw-2', 'tw-3', 'tw-rich'].map((name) => registerUser(url, name)))
  const stranger = await registerUser(url, 'stranger')
  await grant(broker, throwaways[3].id, 2)
  const worker = await rawWorker(wsUrl, farmer.key, { name: 'family', models: [MID], max_length: 256, max_context_length: 4096, priority_usernames: throwaways.map((u) => u.username) })
  t.teardown(() => worker.close())

  const text = 'c'.repeat(160) // 40 tokens, streamed at an honest 80 tokens/s
  const reward = formulaMilli({ model: MID, chars: text.length, prompt: 'hello', maxLength: 256, requestContext: 1024, workerContext: 4096 })
  t.ok(reward > 2000, `one job is worth ${toKudos(reward)} kudos by the formula`)
  const run = async (user: { key: string }) => {
    const peer = await client(wsUrl, user.key)
    t.teardown(() => peer.close())
    const request = await submit(peer, { prompt: 'hello', models: [MID], max_length: 256, max_context_length: 1024 })
    const job = (await worker.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    await streamAt(worker, job, text, 80)
    const done = await peer.next((f) => f.type === 'done' && f.request === request, 15_000)
    const settled = await settledOf(worker, job)
    t.equal(done.tokens, 40, 'billed in full: an honest speed')
    t.equal(settled.kudos, done.kudos, 'requester and worker move the same amount')
    return done.kudos as number
  }

  const paid = []
  for (const user of [farmer, ...throwaways, throwaways[0]]) paid.push(await run(user))
  t.same(paid, [0, 0, 0, 0, 2, 0], 'the owner and its priority users pay only what they hold above zero')
  for (const user of throwaways) {
    const balance = (await broker.services.ledger.account(user.id))!.balance
    t.equal(balance, 0, `${user.username}: no debt from preference`)
  }
  t.equal(await earnedByGeneration(broker, farmer.id), 2000, 'the farmer earned exactly the 2 kudos its family held')

  t.equal(await run(stranger), toKudos(reward), 'a stranger on the same worker pays the formula')
  t.equal(await earnedByGeneration(broker, farmer.id), 2000 + reward)
  const audit = await ledgerInvariant(broker)
  t.same(audit.problems, [])
  t.equal(audit.sumBalances, audit.minted, 'nothing minted: the balances sum to what was awarded')
})
