import t from 'tap'
import { generate, requestStatus } from '../src/clients/client.js'
import { registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { rawWorker, serve } from './helpers/pipeline.js'

t.test('generate(): a restart voids the first attempt\'s text; the result is the last attempt\'s', async (t) => {
  const redis = await startTestRedis(t)
  const { wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const doomed = await rawWorker(wsUrl, owner.key, { name: 'doomed' })

  const seen: string[] = []
  let capability: string | undefined
  const running = generate({
    url, body: { prompt: 'hello', max_length: 20 },
    onAccepted: (_request, given) => { capability = given },
    onStarted: (s) => seen.push(`started ${s.worker} ${s.attempt}`),
    onRestarted: (attempt) => seen.push(`restarted ${attempt}`),
    onChunk: (text, attempt) => seen.push(`${attempt}:${text}`),
  })
  const first = await doomed.next('job')
  ;['old-a ', 'old-b '].forEach((text, seq) => doomed.send({ type: 'chunk', job: first.job, seq, text }))
  await t.resolves(async () => {
    while (!seen.includes('1:old-b ')) await new Promise((r) => setTimeout(r, 10))
  })
  doomed.ws.terminate()
  const rescuer = await rawWorker(wsUrl, owner.key, { name: 'rescuer' })
  t.teardown(() => rescuer.close())
  const second = await rescuer.next('job')
  t.equal(second.attempt, 2)
  serve(rescuer, second.job, ['new-a ', 'new-b'])

  const result = await running
  t.equal(result.state, 'done')
  if (result.state !== 'done') return
  t.equal(result.text, 'new-a new-b', 'only the last attempt\'s text')
  t.same(seen, ['started doomed 1', '1:old-a ', '1:old-b ', 'restarted 2', 'started rescuer 2', '2:new-a ', '2:new-b'])
  await t.rejects(requestStatus(url, result.request), { message: /HTTP 404: unknown_request/ }, 'an anonymous request is not readable by its id alone')
  t.type(capability, 'string', 'the anonymous submission was given a capability')
  const status = await requestStatus(url, result.request, undefined, capability)
  t.equal(status.text, result.text)
})

t.test('generate(): aborting before the request is accepted still cancels it', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const controller = new AbortController()
  controller.abort()
  let capability: string | undefined
  const result = await generate({ url, body: { prompt: 'never mind', models: ['nobody/serves-this'] }, signal: controller.signal, onAccepted: (_request, given) => { capability = given } })
  t.equal(result.state, 'cancelled')
  if (result.state !== 'cancelled') return
  t.equal((await requestStatus(url, result.request, undefined, capability)).state, 'cancelled')
})

t.test('generate(): a refused submit and an unreachable broker are errors, not hangs', async (t) => {
  const redis = await startTestRedis(t)
  const broker = await startBroker(t, { redis })
  const refused = await generate({ url: broker.url, body: { prompt: 'x', max_length: 10_000_000 } })
  t.match(refused, { state: 'error', code: 'validation_failed' })
  await broker.close()
  const gone = await generate({ url: broker.url, body: { prompt: 'x' } })
  t.match(gone, { state: 'error', code: 'connection_failed', message: /ECONNREFUSED/ })
  await t.rejects(requestStatus(broker.url, 'nope'), { message: /fetch failed|ECONNREFUSED/ })
})
