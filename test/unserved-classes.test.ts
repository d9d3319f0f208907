/**
 * Made-up model names: requests for models no worker serves still wait (a worker may come),
 * but one account may keep them waiting in only MAX_UNSERVED_CLASSES_PER_USER classes, since
 * each class holds a queue, a registry entry and a stalled-check timer in every process.
 */
import t from 'tap'
import { client, rawWorker } from './helpers/pipeline.js'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

t.test('an account may wait in a few unserved classes; the next made-up model is refused, served ones are not', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { MAX_UNSERVED_CLASSES_PER_USER: '3', SUBMITS_PER_SECOND: '1000' } })
  const farmer = await registerUser(url, 'class-farmer')
  const other = await registerUser(url, 'class-other')
  const generate = (key: string, models: string[], extra: Record<string, unknown> = {}) =>
    api(url, 'POST', '/v1/generate', { key, body: { prompt: 'p', models, max_length: 16, ...extra } })

  for (let i = 0; i < 3; i++) t.equal((await generate(farmer.key, [`made-up/model-${i}`])).status, 202, `unserved class ${i} accepted`)
  t.equal((await generate(farmer.key, ['made-up/model-0'])).status, 202, 'another request in a class already waiting is accepted')
  const refused = await generate(farmer.key, ['made-up/model-3'])
  t.equal(refused.status, 429, 'a fourth unserved class is refused')
  t.equal(refused.body.error.code, 'too_many_unserved')
  t.match(refused.body.error.message, /at most 3 request classes/)
  const variant = await generate(farmer.key, ['made-up/model-0'], { max_length: 4000 })
  t.equal(variant.status, 429, 'the same made-up model in another length tier is another class')
  const classesBefore = broker.jobQueue.classes.size

  // Over the socket the same rule, with the same code.
  const socket = await client(wsUrl, farmer.key)
  t.teardown(() => socket.close())
  socket.send({ type: 'submit', id: 'x', prompt: 'p', models: ['made-up/model-9'], max_length: 16 })
  const error = await socket.next('error')
  t.equal(error.code, 'too_many_unserved')
  t.equal(broker.jobQueue.classes.size, classesBefore, 'a refused request opened no class')

  // Another account is not affected, and served models are never counted.
  t.equal((await generate(other.key, ['made-up/model-3'])).status, 202, 'another account may wait for that model')
  const owner = await registerUser(url, 'class-owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'class-worker', models: [MODEL, 'made-up/model-1'], threads: 1 })
  t.teardown(() => worker.close())
  t.equal((await generate(farmer.key, [MODEL])).status, 202, 'a served model is accepted past the cap')
  // made-up/model-1 is served now: the farmer waits in two unserved classes, so one more fits.
  t.equal((await generate(farmer.key, ['made-up/model-4'])).status, 202, 'a class that found a worker stops counting')
  t.equal((await generate(farmer.key, ['made-up/model-5'])).status, 429, 'and the cap holds again after it')
})
