/**
 * The OpenAI-compatible endpoint through the official `openai` client, against a real broker
 * and the reference worker (demo backend): streaming chat and completion, a whole answer,
 * the models list, the error shape and statuses, idempotency.
 */
import OpenAI from 'openai'
import t from 'tap'
import { WorkerClient } from '../src/clients/worker-client.js'
import { createDemoBackend } from '../src/clients/backends/demo.js'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

t.test('the openai client against a broker and a demo worker', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const user = await registerUser(url, 'user')
  const worker = new WorkerClient({
    url, key: owner.key, name: 'demo-1', models: ['demo/tiny'], maxLength: 512, maxContextLength: 4096,
    backend: createDemoBackend({ delayMs: 40 }), reconnect: false,
  })
  worker.on('error', () => {})
  await worker.start()
  t.teardown(() => worker.stop())
  const openai = new OpenAI({ apiKey: user.key, baseURL: `${url}/v1`, maxRetries: 0 })
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]

  await t.test('a streaming chat arrives in several deltas while the worker still runs', async (t) => {
    const { data: stream, response } = await openai.chat.completions.create({ model: 'demo/tiny', messages, max_tokens: 6, stream: true }).withResponse()
    const id = response.headers.get('x-horde-request-id')!
    t.ok(id, 'the horde request id is in a header')
    const deltas: string[] = []
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = []
    let runningAtFirst: boolean | undefined
    for await (const chunk of stream) {
      chunks.push(chunk)
      const content = chunk.choices[0]?.delta?.content
      if (content) {
        runningAtFirst ??= broker.core.runner.running(id) !== undefined
        deltas.push(content)
      }
    }
    t.equal(runningAtFirst, true, 'the first delta came while the job was still running')
    t.ok(deltas.length >= 2, `${deltas.length} deltas`)
    t.equal(chunks[0].choices[0].delta.role, 'assistant', 'the first chunk names the role')
    t.equal(chunks.at(-1)!.choices[0].finish_reason, 'length', 'six tokens asked, six made')
    t.ok(chunks.every((c) => c.id === `chatcmpl-${id}` && c.object === 'chat.completion.chunk' && c.model === 'demo/tiny'))
    const view = await api(url, 'GET', `/v1/generate/${id}`, { key: user.key })
    t.equal(view.body.state, 'done')
    t.equal(deltas.join(''), view.body.text, 'the deltas add up to the billed text')
    const row = await broker.services.store.requests.byId(id)
    t.equal(row!.prompt, 'Be brief.\n\n### Instruction:\nHi\n\n### Response:\n', 'the worker got the chat rendered by the default (alpaca) template')
    t.same(row!.params.params.stop_sequence, ['### Instruction:'], "the template's stop string is a stop sequence")
  })

  await t.test('a streaming completion, with the usage chunk', async (t) => {
    const stream = await openai.completions.create({ model: 'demo/tiny', prompt: 'Once upon a time', max_tokens: 5, stream: true, stream_options: { include_usage: true } })
    const chunks: OpenAI.Completion[] = []
    for await (const chunk of stream) chunks.push(chunk)
    const texts = chunks.filter((c) => c.choices[0]?.text).map((c) => c.choices[0].text)
    t.ok(texts.length >= 2, `${texts.length} deltas`)
    const usage = chunks.at(-1)!
    t.same(usage.choices, [], 'the usage chunk has no choices')
    t.same(usage.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 })
    t.equal(chunks.at(-2)!.choices[0].finish_reason, 'length')
    t.ok(chunks.slice(0, -1).every((c) => c.usage === null), 'the other chunks carry usage: null')
  })

  await t.test('a whole answer, through the any alias, with the queue position header', async (t) => {
    const { data, response } = await openai.chat.completions.create({ model: 'any', messages, max_tokens: 4, temperature: 0.7, top_p: 0, seed: 42 }).withResponse()
    t.equal(data.object, 'chat.completion')
    t.equal(data.model, 'demo/tiny', 'the model that ran')
    t.equal(data.choices[0].message.role, 'assistant')
    t.equal(data.choices[0].finish_reason, 'length')
    t.equal(data.usage!.completion_tokens, 4)
    t.equal(response.headers.get('x-horde-queue-position'), '0', 'first in line at acceptance')
    const row = await broker.services.store.requests.byId(response.headers.get('x-horde-request-id')!)
    t.equal(data.choices[0].message.content, row!.text)
    t.same(row!.params.models, [], 'any: any model')
    t.match(row!.params.params, { temperature: 0.7, top_p: 0.001, sampler_seed: 42 }, 'the sampler params, top_p raised to the horde minimum')
  })

  await t.test('the same Idempotency-Key returns the same answer and runs nothing twice', async (t) => {
    const jobs: string[] = []
    const onJob = (job: string) => jobs.push(job)
    worker.on('job', onJob)
    const body = { model: 'demo/tiny', prompt: 'Once', max_tokens: 3 }
    const first = await openai.completions.create(body, { headers: { 'Idempotency-Key': 'same-1' } })
    const again = await openai.completions.create(body, { headers: { 'Idempotency-Key': 'same-1' } })
    worker.off('job', onJob)
    t.equal(again.id, first.id)
    t.equal(again.choices[0].text, first.choices[0].text)
    t.equal(jobs.length, 1, 'one job')
  })

  await t.test('the models list: what workers serve now, with worker counts', async (t) => {
    const page = await openai.models.list()
    const byId = new Map(page.data.map((m) => [m.id, m as OpenAI.Model & { workers: number; max_tokens: number; alias_of?: string[] }]))
    t.match(byId.get('demo/tiny'), { object: 'model', owned_by: 'horde', workers: 1, max_tokens: 512 })
    t.match(byId.get('any'), { workers: 1, alias_of: ['*'] })
    t.notOk(byId.has('koboldcpp/Llama-3-8B'), 'a registry model nobody serves is not listed')
    const one = await openai.models.retrieve('demo/tiny')
    t.equal(one.id, 'demo/tiny', 'a name with a slash, sent as %2F')
    const literal = await api(url, 'GET', '/v1/models/demo/tiny')
    t.equal(literal.body.id, 'demo/tiny', 'and with a literal slash')
    const missing = await openai.models.retrieve('koboldcpp/Llama-3-8B').catch((e) => e)
    t.ok(missing instanceof OpenAI.NotFoundError)
    t.equal(missing.code, 'model_not_found')
  })

  await t.test('errors in OpenAI\'s shape, with fitting statuses', async (t) => {
    const bad = new OpenAI({ apiKey: 'hb_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', baseURL: `${url}/v1`, maxRetries: 0 })
    const denied = await bad.chat.completions.create({ model: 'demo/tiny', messages }).catch((e) => e)
    t.ok(denied instanceof OpenAI.AuthenticationError, 'a bad key: the SDK\'s AuthenticationError')
    t.equal(denied.status, 401)
    t.match(denied.error, { type: 'invalid_request_error', code: 'invalid_api_key', param: null })

    const anonymous = new OpenAI({ apiKey: '0000000000', baseURL: `${url}/v1`, maxRetries: 0 })
    const { data: answer, response } = await anonymous.completions.create({ model: 'demo/tiny', prompt: 'Hi', max_tokens: 2 }).withResponse()
    t.equal(answer.usage!.completion_tokens, 2, 'the Anonymous key works')
    const request = response.headers.get('x-horde-request-id')
    const capability = response.headers.get('x-horde-request-capability')
    t.match(capability, /^[\w-]{22}$/, 'an anonymous answer carries its request\'s capability')
    t.equal((await api(url, 'GET', `/v1/generate/${request}`)).status, 404, 'the id alone opens nothing')
    t.equal((await api(url, 'GET', `/v1/generate/${request}`, { headers: { 'x-request-capability': capability! } })).body.state, 'done', 'the capability does')

    const unknown = await openai.chat.completions.create({ model: 'nobody/model', messages }).catch((e) => e)
    t.ok(unknown instanceof OpenAI.NotFoundError)
    t.match(unknown.error, { code: 'model_not_found', param: 'model', message: /`nobody\/model`/ })

    const idle = await openai.chat.completions.create({ model: 'koboldcpp/Llama-3-8B', messages }).catch((e) => e)
    t.ok(idle instanceof OpenAI.InternalServerError, 'a registry model no worker serves: 503')
    t.equal(idle.status, 503)
    t.equal(idle.code, 'no_worker')
    t.equal(idle.headers.get('x-should-retry'), 'false', 'not worth an automatic retry')

    const tooLong = await openai.chat.completions.create({ model: 'demo/tiny', messages, max_tokens: 600 }).catch((e) => e)
    t.equal(tooLong.status, 503, 'no worker takes 600 tokens')

    const many = await openai.chat.completions.create({ model: 'demo/tiny', messages, n: 2 }).catch((e) => e)
    t.ok(many instanceof OpenAI.BadRequestError)
    t.match(many.error, { param: 'n', code: 'unsupported_value', message: /n = 2 is not supported/ })

    const tools = await openai.chat.completions.create({ model: 'demo/tiny', messages, tools: [{ type: 'function', function: { name: 'f' } }] }).catch((e) => e)
    t.match(tools.error, { param: 'tools', code: 'unsupported_parameter' })

    const image = await openai.chat.completions.create({ model: 'demo/tiny', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] }).catch((e) => e)
    t.match(image.error, { param: 'messages[0].content[0].type' })

    const missing = await openai.chat.completions.create({ model: 'demo/tiny' } as any).catch((e) => e)
    t.match(missing.error, { param: 'messages', code: 'missing_required_parameter', type: 'invalid_request_error' })

    const badType = await openai.chat.completions.create({ model: 'demo/tiny', messages, temperature: 'hot' } as any).catch((e) => e)
    t.match(badType.error, { param: 'temperature', code: 'invalid_value' })

    const huge = await openai.chat.completions.create({ model: 'demo/tiny', messages, max_tokens: 5000 }).catch((e) => e)
    t.match(huge.error, { param: 'max_tokens', message: /at most 4096/ })

    const options = await openai.chat.completions.create({ model: 'demo/tiny', messages, stream_options: { include_usage: true } }).catch((e) => e)
    t.match(options.error, { param: 'stream_options' })
    const status = await api(url, 'GET', '/v1/status')
    t.same(status.body.waiting, {}, 'refused requests queue nothing')
  })
})
