import t from 'tap'
import { createOpenAIBackend } from '../src/clients/backends/openai.js'
import { generate } from '../src/clients/client.js'
import { WorkerClient } from '../src/clients/worker-client.js'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { DEFAULT_TOKENS, startOpenAIStandIn } from './helpers/backend-servers.js'
import { runScript } from './helpers/process.js'

t.test('horde-worker (demo) and horde, as real processes: the streamed text is the request\'s text', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')

  const worker = runScript(t, 'horde-worker.ts', ['--url', url, '--name', 'ref-1', '--backend', 'demo', '--delay-ms', '5', '--model', 'demo/tiny', '--max-length', '100'], { HORDE_API_KEY: owner.key })
  await worker.waitFor(/ready: worker ref-1 \(id \d+\) serving demo\/tiny on the demo backend/)

  const horde = runScript(t, 'horde.ts', ['The horde says', '--max-length', '20', '--model', 'demo/tiny'], { HORDE_URL: url })
  const { code } = await horde.exited
  t.equal(code, 0, `exit 0; stderr:\n${horde.stderr()}`)
  const id = horde.stderr().match(/^request ([\w-]+) \(anonymous\)$/m)?.[1]
  t.ok(id, 'the request id is on stderr')
  t.match(horde.stderr(), /^queued: position \d+/m, 'the queue position is on stderr')
  t.match(horde.stderr(), /^started on worker ref-1 \(model demo\/tiny\)$/m)
  t.match(horde.stderr(), /^done: 20 tokens, [\d.]+ kudos, worker ref-1$/m)

  const capability = horde.stderr().match(/^capability ([\w-]+)$/m)?.[1]
  t.ok(capability, 'the anonymous request\'s capability is on stderr')
  t.equal((await api(url, 'GET', `/v1/generate/${id}`)).status, 404, 'without it, the id alone opens nothing')
  const status = await api(url, 'GET', `/v1/generate/${id}`, { headers: { 'x-request-capability': capability! } })
  t.equal(status.body.state, 'done')
  t.equal(status.body.text.length, 80, 'twenty 4-character demo words')
  t.equal(horde.stdout(), status.body.text, 'stdout holds exactly the text, as streamed')
  // The worker knows the job by its own id (per attempt), never the request's.
  await worker.waitFor(/job [\w-]+: done, 20 tokens/)
  t.notMatch(worker.stderr() + worker.stdout(), id!, 'the request id never reached the worker')

  const shown = runScript(t, 'horde.ts', ['status', id!, '--capability', capability!, '--url', url])
  t.equal((await shown.exited).code, 0)
  t.equal(shown.stdout(), status.body.text, 'horde status prints the text to stdout')
  t.match(shown.stderr(), /^state: done$/m)
  t.match(shown.stderr(), /^worker: ref-1$/m)

  worker.child.kill('SIGTERM')
  const stopped = await worker.exited
  t.equal(stopped.code, 0, 'SIGTERM stops the worker cleanly')
  t.match(worker.stderr(), /SIGTERM: finishing 0 running job\(s\), taking no more/)
})

t.test('Ctrl-C on horde cancels the request on the broker', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  const worker = runScript(t, 'horde-worker.ts', ['--url', url, '--key', owner.key, '--name', 'slow', '--delay-ms', '100'])
  await worker.waitFor(/ready: worker slow/)

  const horde = runScript(t, 'horde.ts', ['a long story', '--max-length', '200', '--url', url, '--key', requester.key])
  await horde.waitFor(/\S/, 'stdout')
  const id = (await horde.waitFor(/^request ([\w-]+)$/m))[1]
  horde.child.kill('SIGINT')
  const { code } = await horde.exited
  t.equal(code, 130, `exit 130 after a cancel; stderr:\n${horde.stderr()}`)
  t.match(horde.stderr(), /^cancelled: \d+ tokens delivered/m)
  const status = await api(url, 'GET', `/v1/generate/${id}`, { key: requester.key })
  t.equal(status.body.state, 'cancelled')
  t.ok(status.body.text.startsWith(horde.stdout().trimEnd()) || horde.stdout().startsWith(status.body.text), 'what was printed is what was delivered')
  await worker.waitFor(/job [\w-]+: cancelled/)
})

t.test('a request that fails or is refused exits non-zero', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis, env: { REQUEST_TTL_SECONDS: '1' } })
  // No worker serves this model: the request expires.
  const expired = runScript(t, 'horde.ts', ['hello', '--model', 'nobody/serves-this', '--url', url])
  const refused = runScript(t, 'horde.ts', ['hello', '--url', url, '--key', 'hb_not_a_key'])
  const usage = runScript(t, 'horde.ts', ['hello', '--max-length', 'many', '--url', url])
  t.equal((await expired.exited).code, 1)
  t.match(expired.stderr(), /no connected worker can serve it yet/)
  t.match(expired.stderr(), /^failed: expired: /m)
  t.equal((await refused.exited).code, 1)
  t.match(refused.stderr(), /^error: connection_failed: the broker refused the client socket: HTTP 401/m)
  t.equal((await usage.exited).code, 2)
  t.match(usage.stderr(), /--max-length must be a positive integer/)
})

t.test('horde-worker refuses to start without a key, and stops on a key the broker refuses', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const keyless = runScript(t, 'horde-worker.ts', ['--url', url])
  const wrong = runScript(t, 'horde-worker.ts', ['--url', url, '--key', 'hb_not_a_key'])
  t.equal((await keyless.exited).code, 2)
  t.match(keyless.stderr(), /needs its owner's API key/)
  t.equal((await wrong.exited).code, 1, 'no endless reconnecting with a key that cannot work')
  t.match(wrong.stderr(), /refused the worker socket: HTTP 401/)
})

t.test('the reference worker on the openai backend, against a stand-in server', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  const server = await startOpenAIStandIn(t)

  const worker = new WorkerClient({
    url, key: owner.key, name: 'oai-1', models: ['openai/stand-in'], maxLength: 256, maxContextLength: 4096,
    backend: createOpenAIBackend({ url: server.url, key: 'sk-local', model: 'stand-in' }),
  })
  worker.on('error', () => {})
  t.teardown(() => worker.stop())
  await worker.start()

  const chunks: string[] = []
  const queued: Array<number | null> = []
  const result = await generate({
    url, key: requester.key, body: { prompt: 'Say hello', models: ['openai/stand-in'], max_length: 30, params: { temperature: 0.2 } },
    onQueued: (q) => queued.push(q.position),
    onChunk: (text) => chunks.push(text),
  })
  t.equal(result.state, 'done')
  if (result.state !== 'done') return
  t.same(chunks, DEFAULT_TOKENS, 'each streamed piece became one chunk')
  t.equal(result.text, DEFAULT_TOKENS.join(''))
  t.equal(result.worker, 'oai-1')
  t.ok(queued.length >= 1, 'a queue position came first')
  const status = await api(url, 'GET', `/v1/generate/${result.request}`, { key: requester.key })
  t.equal(status.body.text, result.text)
  const sent = server.requests[0]
  t.equal(sent.headers.authorization, 'Bearer sk-local')
  t.same([sent.body.model, sent.body.prompt, sent.body.max_tokens, sent.body.temperature], ['stand-in', 'Say hello', 30, 0.2])
})
