/**
 * Honest workers are paid exactly the formula, also when they serve Anonymous (no credit
 * line by default: the seed's rule), and requester and worker move the same amount. An
 * honest speed never hits the bound, so an honest worker is never flagged.
 */
import t from 'tap'
import { ANONYMOUS_ID } from '../../src/economy/anonymous.js'
import { toKudos } from '../../src/economy/amounts.js'
import { grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, submit } from '../helpers/pipeline.js'
import { MID, formulaMilli, settledOf, streamAt } from '../helpers/farm.js'

t.test('honest workers: exactly the formula, for funded users, users in small debt and Anonymous', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const funded = await registerUser(url, 'funded')
  const newcomer = await registerUser(url, 'newcomer')
  await grant(broker, funded.id, 500)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'honest-13b', models: [MID], max_length: 512, max_context_length: 4096 })
  t.teardown(() => worker.close())
  const balance = async (id: number) => (await broker.services.ledger.account(id))!.balance

  const cases = [
    { who: 'funded', key: funded.key, id: funded.id, prompt: 'p'.repeat(6000), chars: 203 },
    { who: 'newcomer, into a small debt', key: newcomer.key, id: newcomer.id, prompt: 'q'.repeat(1200), chars: 96 },
    { who: 'Anonymous', key: undefined, id: ANONYMOUS_ID, prompt: 'r'.repeat(20_000), chars: 150 },
    { who: 'Anonymous again', key: undefined, id: ANONYMOUS_ID, prompt: 's'.repeat(2048), chars: 64 },
  ]
  for (const c of cases) {
    const peer = await client(wsUrl, c.key)
    t.teardown(() => peer.close())
    const request = await submit(peer, { prompt: c.prompt, models: [MID], max_length: 512, max_context_length: 4096 })
    const job = (await worker.next((f) => f.type === 'job' && f.forRequest === request, 15_000)).job
    const before = [await balance(c.id), await balance(owner.id)]
    // 40 tokens per second: an ordinary 13B speed, far under the model's bound (538).
    await streamAt(worker, job, 'e'.repeat(c.chars), 40)
    const done = await peer.next((f) => f.type === 'done' && f.request === request, 15_000)
    const settled = await settledOf(worker, job)
    const expected = formulaMilli({ model: MID, chars: c.chars, prompt: c.prompt, maxLength: 512, requestContext: 4096, workerContext: 4096 })
    t.equal(done.tokens, Math.ceil(c.chars / 4), `${c.who}: every token billed`)
    t.equal(done.kudos, toKudos(expected), `${c.who}: exactly the formula (${toKudos(expected)} kudos)`)
    t.equal(settled.kudos, done.kudos, `${c.who}: the worker earned what the requester paid`)
    const after = [await balance(c.id), await balance(owner.id)]
    t.equal(before[0] - after[0], expected, `${c.who}: the requester moved ${toKudos(expected)}`)
    t.equal(after[1] - before[1], expected, `${c.who}: the owner moved the same`)
  }
  t.match(await broker.services.store.workers.byName('honest-13b'), { boundedJobs: 0, flaggedAt: null }, 'never hit the bound, never flagged')
  t.same((await ledgerInvariant(broker)).problems, [])
})
