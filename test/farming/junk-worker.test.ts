/**
 * The farmer's worker of issue 14: it announces the largest registry model with a
 * 262,144-token context, takes a 100,000-character prompt with max_length 4096 and answers
 * 16,384 'a' characters at once. Measured before the policy: 96,360 kudos per job. Now the
 * payment is bounded by what the broker observed: per wall-second, no more than an honest
 * worker of the claimed size earns at its plausible speed; and the context bonus of the giant
 * prompt is no more than that of an 8,192-token one.
 */
import t from 'tap'
import { toKudos } from '../../src/economy/amounts.js'
import { generationReward } from '../../src/economy/rewards.js'
import { grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, serve, submit } from '../helpers/pipeline.js'
import { BIG, earnedByGeneration, formulaMilli, registry, settledOf, streamAt } from '../helpers/farm.js'

const GIANT = 'x'.repeat(100_000)
const HUGE_CONTEXT = 262_144

t.test('junk at once: earnings per wall-second stay within an honest 70B worker\'s at plausible speed', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const farmer = await registerUser(url, 'farmer')
  const payer = await registerUser(url, 'payer')
  // A funded payer: no credit line stands between the farmer and the payment, only the bounds.
  await grant(broker, payer.id, 1_000_000)
  const junk = await rawWorker(wsUrl, farmer.key, { name: 'junk', models: [BIG], max_length: 4096, max_context_length: HUGE_CONTEXT })
  const submitter = await client(wsUrl, payer.key)
  t.teardown(() => { junk.close(); submitter.close() })

  const { maxTokensPerSecond, maxContextTokens } = registry.limitsOf(BIG)
  t.equal(maxTokensPerSecond, 100, 'a 70B model: at most 100 tokens per second')
  t.equal(maxContextTokens, 8192, 'the context bonus counts at most 8,192 prompt tokens')
  // What an honest 70B worker earns per second at that speed, on a prompt of 8,192 counted tokens.
  const honestPerSecond = generationReward(maxTokensPerSecond, 70, maxContextTokens)

  let wallMs = 0
  const jobs = 4
  for (let i = 0; i < jobs; i++) {
    // From before the submit to the settlement: at least what the broker observed of the job.
    const started = performance.now()
    const request = await submit(submitter, { prompt: GIANT, models: [BIG], max_length: 4096, max_context_length: HUGE_CONTEXT })
    const job = (await junk.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    serve(junk, job, ['a'.repeat(16_384)])
    const done = await submitter.next((f) => f.type === 'done' && f.request === request, 15_000)
    const settled = await settledOf(junk, job)
    const ms = performance.now() - started
    wallMs += ms
    t.ok(done.tokens <= Math.floor((ms / 1000) * maxTokensPerSecond), `job ${i + 1}: ${done.tokens} tokens billed of 4,096 counted, within ${ms.toFixed(0)} ms at 100 tokens/s`)
    t.ok(done.kudos < 96_360 / 100, `job ${i + 1}: ${done.kudos} kudos (96,360 before the policy)`)
    t.equal(settled.kudos, done.kudos, 'the requester pays what the worker earned')
  }
  const earned = toKudos(await earnedByGeneration(broker, farmer.id))
  const perSecond = earned / (wallMs / 1000)
  t.ok(perSecond <= honestPerSecond, `junk: ${perSecond.toFixed(2)} kudos per wall-second <= honest 70B at 100 tokens/s: ${honestPerSecond.toFixed(2)}`)
  const row = await broker.services.store.workers.byName('junk')
  t.equal(row?.boundedJobs, jobs, 'every one of its deliveries hit the speed bound')
  t.ok(row?.flaggedAt, 'and it is flagged for moderators')
  t.same((await ledgerInvariant(broker)).problems, [], 'audit clean')
})

t.test('the context bonus of a 100,000-character prompt is no more than that of an 8,192-token one', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const payer = await registerUser(url, 'payer')
  await grant(broker, payer.id, 100_000)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'big', models: [BIG], max_length: 512, max_context_length: HUGE_CONTEXT })
  const submitter = await client(wsUrl, payer.key)
  t.teardown(() => { worker.close(); submitter.close() })

  const paid: Record<string, number> = {}
  const text = 'b'.repeat(80) // 20 tokens: 0.2 s at 100 tokens/s; streamed at 50
  for (const [name, prompt] of [['giant', GIANT], ['8192 tokens', 'y'.repeat(8192 * 4)]] as const) {
    const request = await submit(submitter, { prompt, models: [BIG], max_length: 512, max_context_length: HUGE_CONTEXT })
    const job = (await worker.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    await streamAt(worker, job, text, 50)
    const done = await submitter.next((f) => f.type === 'done' && f.request === request, 15_000)
    t.equal(done.tokens, 20, `${name}: an honest delivery is billed in full`)
    paid[name] = done.kudos
  }
  t.ok(paid.giant <= paid['8192 tokens'], `giant prompt ${paid.giant} <= 8,192-token prompt ${paid['8192 tokens']}`)
  const expected = formulaMilli({ model: BIG, chars: text.length, prompt: GIANT, maxLength: 512, requestContext: HUGE_CONTEXT, workerContext: HUGE_CONTEXT })
  t.equal(paid.giant, toKudos(expected), 'both exactly the formula with 8,192 prompt tokens')
  t.equal(paid['8192 tokens'], toKudos(expected))
  t.same((await ledgerInvariant(broker)).problems, [])
})
