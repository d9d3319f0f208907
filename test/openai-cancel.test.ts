/**
 * An OpenAI-compatible call whose HTTP client goes away is cancelled on the broker and pays
 * only for the text delivered: an aborted stream mid-answer, and a non-streaming call
 * aborted right after the broker accepted it (before the answer could even start), which
 * must not stay queued for nobody. The official `openai` client, a real broker, the
 * reference worker on the demo backend.
 */
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import OpenAI from 'openai'
import t from 'tap'
import { createDemoBackend } from '../src/clients/backends/demo.js'
import { WorkerClient } from '../src/clients/worker-client.js'
import { countTokens } from '../src/economy/rewards.js'
import { api, balanceOf, eventually, grant, ledgerInvariant, registerUser, startBroker, startTestRedis, type TestLike } from './helpers/harness.js'
import { rawWorker } from './helpers/pipeline.js'

const FINAL = ['done', 'failed', 'cancelled']
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Tell me a long story' }]

async function demoWorker(t: TestLike, url: string, key: string, name: string, delayMs: number): Promise<WorkerClient> {
  const worker = new WorkerClient({
    url, key, name, models: ['demo/tiny'], maxLength: 512, maxContextLength: 4096,
    backend: createDemoBackend({ delayMs }), reconnect: false,
  })
  worker.on('error', () => {})
  await worker.start()
  t.teardown(() => worker.stop())
  return worker
}

/** Waits until the request has ended and returns its view. */
async function ended(url: string, key: string, id: string): Promise<any> {
  return eventually(async () => {
    const view = (await api(url, 'GET', `/v1/generate/${id}`, { key })).body
    return FINAL.includes(view.state) ? view : undefined
  }, 15_000, `request ${id} to end`)
}

t.test('an aborted stream cancels the request; the caller pays for the delivered text only', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const caller = await registerUser(url, 'caller')
  await grant(broker, caller.id, 100)
  const worker = await demoWorker(t, url, owner.key, 'slow-demo', 60)
  const cancels: string[] = []
  worker.on('settled', (s) => { if (s.outcome === 'cancelled') cancels.push(s.job) })
  const jobs: string[] = [] // the worker knows a job by its own id, not the request's
  worker.on('job', (job: string) => jobs.push(job))
  const openai = new OpenAI({ apiKey: caller.key, baseURL: `${url}/v1`, maxRetries: 0 })

  const controller = new AbortController()
  const { data: stream, response } = await openai.chat.completions.create({ model: 'demo/tiny', messages, max_tokens: 200, stream: true }, { signal: controller.signal }).withResponse()
  const id = response.headers.get('x-horde-request-id')!
  let received = ''
  let deltas = 0
  let finish: string | null | undefined
  try {
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content
      finish ??= chunk.choices[0]?.finish_reason
      if (!content) continue
      received += content
      if (++deltas === 3) controller.abort()
    }
  } catch (error) {
    // The SDK ends the iteration quietly on an abort; should it throw, it is its abort error.
    t.ok(error instanceof OpenAI.APIUserAbortError, 'only the abort ends the stream')
  }
  t.ok(controller.signal.aborted && deltas >= 3 && !finish, `the client stopped reading after ${deltas} deltas, before the answer finished`)

  const view = await ended(url, caller.key, id)
  t.equal(view.state, 'cancelled', 'the request is cancelled on the broker')
  t.ok(view.text.startsWith(received), 'what the client read is the start of what was billed')
  t.ok(view.tokens >= 3 && view.tokens < 200, `billed ${view.tokens} of the 200 tokens asked`)
  t.equal(view.tokens, countTokens(view.text, 200), 'billed for exactly the relayed text')
  t.ok(view.kudos > 0)
  t.equal(await balanceOf(broker, owner.id), view.kudos, 'the worker\'s owner earned the delivered part')
  t.equal(await balanceOf(broker, caller.id), Number((100 - view.kudos).toFixed(3)), 'the caller paid the same')
  t.equal(jobs.length, 1, 'one job ran')
  t.not(jobs[0], id, 'the worker never saw the request id')
  await eventually(() => cancels.includes(jobs[0]), 10_000, 'the worker to hear of the cancel')
  const inv = await ledgerInvariant(broker)
  t.equal(inv.sumBalances, inv.minted)
})

t.test('a non-streaming call whose client leaves as it is accepted is cancelled, not left queued', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const caller = await registerUser(url, 'caller')
  // A worker that could serve it but takes nothing: the request would wait for ever.
  const resting = await rawWorker(url.replace(/^http/, 'ws'), owner.key, { name: 'resting' })
  t.teardown(() => resting.close())
  resting.send({ type: 'maintenance', on: true })
  const openai = new OpenAI({ apiKey: caller.key, baseURL: `${url}/v1`, maxRetries: 0 })
  // The socket the call arrives on, to see when the server notices that the client left.
  let callSocket: Socket | undefined
  broker.app.server.on('request', (request: IncomingMessage) => { if (request.url === '/v1/chat/completions') callSocket = request.socket })

  // The real submission runs; the client is made to leave the moment it returns, before the
  // route goes on to answer: the gap in which a client that leaves used to go unnoticed.
  const generations = broker.core.generations
  const submit = generations.submit
  const controller = new AbortController()
  let accepted: string | undefined
  generations.submit = async (...args) => {
    const result = await submit(...args)
    accepted = result.id
    controller.abort()
    await eventually(() => callSocket?.destroyed, 10_000, 'the server to see the client go')
    return result
  }
  t.teardown(() => { generations.submit = submit })
  const outcome = await openai.chat.completions.create({ model: 'demo/tiny', messages, max_tokens: 20 }, { signal: controller.signal }).catch((e) => e)
  t.ok(outcome instanceof OpenAI.APIUserAbortError, 'the client aborted')
  t.ok(accepted, 'the broker had accepted the request')
  const view = await ended(url, caller.key, accepted!)
  t.equal(view.state, 'cancelled', 'cancelled, not waiting')
  t.equal(view.tokens, 0)
  const status = await api(url, 'GET', '/v1/status')
  t.same(status.body.waiting, {}, 'nothing is left in the queue')
  t.equal(await balanceOf(broker, caller.id), 0, 'nothing charged')
})

t.test('non-streaming calls aborted within milliseconds all end cancelled, never queued or run to the end', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis, env: { MAX_ACTIVE_PER_USER: '1000', SUBMITS_PER_SECOND: '1000' } })
  const owner = await registerUser(url, 'owner')
  const caller = await registerUser(url, 'caller')
  await grant(broker, caller.id, 100)
  await demoWorker(t, url, owner.key, 'idle-demo', 50)
  const openai = new OpenAI({ apiKey: caller.key, baseURL: `${url}/v1`, maxRetries: 0 })
  const { requests } = broker.services.store

  // Aborts at 0 to 40 ms after sending: before the body arrives, while it is submitted,
  // while it is dispatched to the idle worker, and once it runs.
  for (const afterMs of [0, 1, 2, 3, 5, 8, 12, 20, 30, 40]) {
    const controller = new AbortController()
    const call = openai.chat.completions.create({ model: 'demo/tiny', messages, max_tokens: 40 }, { signal: controller.signal }).catch((e) => e)
    setTimeout(() => controller.abort(), afterMs)
    t.ok((await call) instanceof OpenAI.APIUserAbortError, `aborted after ${afterMs} ms`)
  }
  const settledAll = await eventually(async () => {
    const total = await requests.count({ userId: caller.id })
    const cancelled = await requests.count({ userId: caller.id, state: 'cancelled' })
    return cancelled === total ? total : undefined
  }, 20_000, 'every accepted request to end cancelled').catch(async (error) => {
    const states = await Promise.all(['waiting', 'done', 'failed', 'cancelled'].map(async (state) => `${state} ${await requests.count({ userId: caller.id, state: state as 'waiting' })}`))
    throw new Error(`${error.message}: ${states.join(', ')}`)
  })
  t.ok(settledAll! >= 1, `${settledAll} of 10 calls reached the broker, and every one of them was cancelled`)
  t.same((await api(url, 'GET', '/v1/status')).body.waiting, {}, 'nothing is left in the queue')
  const inv = await ledgerInvariant(broker)
  t.equal(inv.sumBalances, inv.minted)
})
