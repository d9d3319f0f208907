import net, { type AddressInfo } from 'node:net'
import t from 'tap'
import type { Backend, GenerateJob } from '../src/clients/backends/backend.js'
import { createKoboldBackend } from '../src/clients/backends/kobold.js'
import { createOpenAIBackend } from '../src/clients/backends/openai.js'
import { eventually } from './helpers/harness.js'
import { DEFAULT_TOKENS, startKoboldStandIn, startOpenAIStandIn } from './helpers/backend-servers.js'

const job: GenerateJob = {
  prompt: 'Once upon a time',
  model: 'koboldcpp/Stand-In-7B',
  max_length: 40,
  max_context_length: 2048,
  params: { temperature: 0.7, top_p: 0.9, rep_pen: 1.1, stop_sequence: ['\n\n'], prompt: 'an override attempt', mirostat: 2 },
}

async function collect(backend: Backend, signal = new AbortController().signal, onPiece?: (piece: string) => void): Promise<string[]> {
  const pieces: string[] = []
  for await (const piece of backend.generate(job, signal)) {
    pieces.push(piece)
    onPiece?.(piece)
  }
  return pieces
}

t.test('kobold: streamed tokens arrive as the same pieces, however TCP cut them', async (t) => {
  const server = await startKoboldStandIn(t)
  const pieces = await collect(createKoboldBackend({ url: server.url }))
  t.same(pieces, DEFAULT_TOKENS, 'one piece per token, the empty final token skipped')
  t.ok(server.writes > DEFAULT_TOKENS.length * 3, `the stream went out in ${server.writes} writes`)
  const [request] = server.requests
  t.equal(request.path, '/api/extra/generate/stream')
  t.equal(request.body.prompt, job.prompt, 'sampler params cannot replace the prompt')
  t.equal(request.body.max_length, 40)
  t.equal(request.body.max_context_length, 2048)
  t.equal(request.body.temperature, 0.7, 'sampler params pass through under their KoboldAI names')
  t.equal(request.body.mirostat, 2)
  t.match(request.body.genkey, /^horde-/, 'a genkey, so that an abort stops only this generation')
})

t.test('kobold: a server without the streaming route gets /api/v1/generate, the whole text in one piece', async (t) => {
  const server = await startKoboldStandIn(t, { noStream: true })
  const backend = createKoboldBackend({ url: `${server.url}/` })
  t.same(await collect(backend), [DEFAULT_TOKENS.join('')])
  t.same(await collect(backend), [DEFAULT_TOKENS.join('')], 'again')
  t.same(server.requests.map((r) => r.path), ['/api/extra/generate/stream', '/api/v1/generate', '/api/v1/generate'], 'the missing route is tried once, then remembered')
  t.equal(server.requests[1].body.prompt, job.prompt)
})

t.test('kobold: an HTTP 500 is a clear error', async (t) => {
  const server = await startKoboldStandIn(t, { failStatus: 500 })
  await t.rejects(collect(createKoboldBackend({ url: server.url })), {
    message: `kobold backend: POST ${server.url}/api/extra/generate/stream failed with HTTP 500 Internal Server Error: the model fell over`,
  })
  t.equal(server.requests.length, 1, 'a 500 is not a reason to fall back to the other route')
})

t.test('kobold: an abort mid-stream ends the pieces and hangs up on the server', async (t) => {
  const server = await startKoboldStandIn(t, { writeDelayMs: 20 })
  const controller = new AbortController()
  const pieces = await collect(createKoboldBackend({ url: server.url }), controller.signal, () => controller.abort())
  t.same(pieces, [DEFAULT_TOKENS[0]], 'nothing after the abort')
  await eventually(() => server.abandoned === 1, 5000, 'the server to see the client leave')
  await eventually(() => server.aborts.length === 1, 5000, 'the abort call')
  t.equal(server.aborts[0], server.requests[0].body.genkey, 'KoboldCpp is asked to stop this generation')
})

t.test('kobold: the loaded model is read from /api/v1/model', async (t) => {
  const server = await startKoboldStandIn(t, { model: 'koboldcpp/Tiefighter-13B' })
  t.equal(await createKoboldBackend({ url: server.url }).model(), 'koboldcpp/Tiefighter-13B')
})

t.test('kobold: an unreachable server is a clear error', async (t) => {
  // A port that was just free: nothing listens there now.
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  await t.rejects(collect(createKoboldBackend({ url: `http://127.0.0.1:${port}` })), {
    message: new RegExp(`^kobold backend: cannot reach http://127\\.0\\.0\\.1:${port}/api/extra/generate/stream: .*ECONNREFUSED`),
  })
})

t.test('openai: streamed choices arrive as the same pieces until [DONE]', async (t) => {
  const server = await startOpenAIStandIn(t)
  const pieces = await collect(createOpenAIBackend({ url: server.url, key: 'sk-test' }))
  t.same(pieces, DEFAULT_TOKENS)
  t.ok(server.writes > DEFAULT_TOKENS.length * 3, `the stream went out in ${server.writes} writes`)
  const [request] = server.requests
  t.equal(request.headers.authorization, 'Bearer sk-test')
  t.same(request.body, {
    temperature: 0.7, top_p: 0.9, repetition_penalty: 1.1, stop: ['\n\n'], n: 1,
    model: job.model, prompt: job.prompt, max_tokens: 40, stream: true,
  }, 'mapped sampler params; unknown ones (mirostat, prompt) dropped')
})

t.test('openai: a base URL ending in /v1 and a backend model name', async (t) => {
  const server = await startOpenAIStandIn(t)
  t.same(await collect(createOpenAIBackend({ url: `${server.url}/v1/`, model: 'served-name' })), DEFAULT_TOKENS)
  t.equal(server.requests[0].path, '/v1/completions')
  t.equal(server.requests[0].body.model, 'served-name')
  t.notOk(server.requests[0].headers.authorization, 'no key, no header')
})

t.test('openai: an HTTP 500 is a clear error', async (t) => {
  const server = await startOpenAIStandIn(t, { failStatus: 500 })
  await t.rejects(collect(createOpenAIBackend({ url: server.url })), {
    message: `openai backend: POST ${server.url}/v1/completions failed with HTTP 500 Internal Server Error: the GPU is on fire`,
  })
})

t.test('openai: an abort mid-stream ends the pieces and hangs up on the server', async (t) => {
  const server = await startOpenAIStandIn(t, { writeDelayMs: 20 })
  const controller = new AbortController()
  const pieces = await collect(createOpenAIBackend({ url: server.url }), controller.signal, () => controller.abort())
  t.same(pieces, [DEFAULT_TOKENS[0]])
  await eventually(() => server.abandoned === 1, 5000, 'the server to see the client leave')
})
