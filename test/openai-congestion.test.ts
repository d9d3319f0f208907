/**
 * OpenAI-compatible calls are ordinary horde requests: under congestion they are served in
 * kudos order (a rich caller before an indebted one that asked first), and the broker's
 * limits answer 429 in OpenAI's error shape, which the official client raises as its own
 * RateLimitError.
 */
import OpenAI from 'openai'
import t from 'tap'
import { eventually, registerUser, setBalance, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'

t.test('congestion through the SDK: the rich caller is served before the indebted one; over the limit, a 429', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { MAX_ACTIVE_PER_USER: '1' } })
  const owner = await registerUser(url, 'owner')
  const rich = await registerUser(url, 'rich')
  const debtor = await registerUser(url, 'debtor')
  const blocker = await registerUser(url, 'blocker')
  await setBalance(broker, rich.id, 1000)
  await setBalance(broker, debtor.id, -500)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'only', models: ['demo/tiny'] })
  const blockerSocket = await client(wsUrl, blocker.key)
  t.teardown(() => { worker.close(); blockerSocket.close() })
  const sdk = (key: string) => new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 })
  const ask = (key: string, who: string) => sdk(key).chat.completions.create({ model: 'demo/tiny', messages: [{ role: 'user', content: `I am ${who}` }], max_tokens: 8 })

  // The only worker is busy: whatever comes next waits.
  const first = await submit(blockerSocket, { models: ['demo/tiny'] })
  const firstJob = await worker.next('job')
  t.equal(firstJob.forRequest, first)
  const debtorCall = ask(debtor.key, 'the debtor')
  const { requests } = broker.services.store
  await eventually(async () => (await requests.count({ userId: debtor.id })) === 1, 10_000, 'the debtor\'s call to be queued')
  const richCall = ask(rich.key, 'rich')
  await eventually(async () => (await requests.count({ userId: rich.id })) === 1, 10_000, 'the rich call to be queued')

  // One request waiting or running per user (MAX_ACTIVE_PER_USER=1): the rich caller's second is refused.
  const refused = await ask(rich.key, 'greedy').catch((e) => e)
  t.ok(refused instanceof OpenAI.RateLimitError, 'a 429 raised as the SDK\'s RateLimitError')
  t.equal(refused.status, 429)
  t.match(refused.error, { type: 'requests', code: 'too_many_active', param: null, message: /At most 1 requests may wait or run at once/ })
  t.equal(await requests.count({ userId: rich.id }), 1, 'the refused call queued nothing')

  serve(worker, firstJob.job, ['done'])
  const next = await worker.next('job')
  t.match(next.prompt, /I am rich/, 'the rich caller (1000 kudos) is served first, though it asked second')
  serve(worker, next.job, ['rich ', 'answer'])
  const last = await worker.next('job')
  t.match(last.prompt, /I am the debtor/, 'the indebted caller (-500) comes after')
  serve(worker, last.job, ['debtor ', 'answer'])
  const [richAnswer, debtorAnswer] = await Promise.all([richCall, debtorCall])
  t.equal(richAnswer.choices[0].message.content, 'rich answer')
  t.equal(debtorAnswer.choices[0].message.content, 'debtor answer')
  t.equal(richAnswer.id, `chatcmpl-${next.forRequest}`)
  t.equal(debtorAnswer.id, `chatcmpl-${last.forRequest}`)
})
