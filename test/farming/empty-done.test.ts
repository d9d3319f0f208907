/**
 * An empty `done` (no chunks) billed 1 token times the context bonus before the policy:
 * 23.5 kudos on a 70B claim. Now it bills nothing: no tokens, no entry, no balance moves.
 */
import t from 'tap'
import { grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, submit } from '../helpers/pipeline.js'
import { BIG, earnedByGeneration, settledOf } from '../helpers/farm.js'

t.test('an empty done bills nothing', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const farmer = await registerUser(url, 'farmer')
  const payer = await registerUser(url, 'payer')
  await grant(broker, payer.id, 1000)
  const junk = await rawWorker(wsUrl, farmer.key, { name: 'empty', models: [BIG], max_length: 4096, max_context_length: 262_144 })
  const submitter = await client(wsUrl, payer.key)
  t.teardown(() => { junk.close(); submitter.close() })

  for (let i = 0; i < 3; i++) {
    const request = await submit(submitter, { prompt: 'x'.repeat(100_000), models: [BIG], max_length: 4096, max_context_length: 262_144 })
    const job = (await junk.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    // Taking its time does not help: there is no text to pay for.
    await new Promise((resolve) => setTimeout(resolve, 300))
    junk.send({ type: 'done', job, chunks: 0 })
    const done = await submitter.next((f) => f.type === 'done' && f.request === request, 15_000)
    t.match(done, { tokens: 0, kudos: 0, text: '' }, `empty done ${i + 1}: 0 tokens, 0 kudos`)
    t.match(await settledOf(junk, job), { tokens: 0, kudos: 0 })
    t.equal(await broker.services.store.audit.countEntries('generation', request), 0, 'no ledger entry')
  }
  t.equal(await earnedByGeneration(broker, farmer.id), 0, 'the farmer earned nothing')
  t.equal((await broker.services.ledger.account(payer.id))?.balance, 1_000_000, 'the payer paid nothing')
  t.match(await broker.services.store.workers.byName('empty'), { jobs: 3, tokens: 0, earned: 0 })
  t.same((await ledgerInvariant(broker)).problems, [])
})
