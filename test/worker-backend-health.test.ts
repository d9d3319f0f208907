import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { api, registerUser, startBroker, startTestRedis, type TestLike } from './helpers/harness.js'
import { runScript } from './helpers/process.js'

/** A KoboldCpp-like server that can be switched off (503 on every route, as while loading) and on. */
async function switchable(t: TestLike, up: boolean): Promise<{ url: string; set(up: boolean): void; generations: number }> {
  const state = { url: '', up, generations: 0, set(value: boolean) { state.up = value } }
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (!state.up) { res.writeHead(503, { 'content-type': 'application/json' }); res.end('{"detail":"loading"}'); return }
      if (req.url === '/api/v1/model') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"result":"koboldcpp/Switch-7B"}'); return }
      if (req.url === '/api/extra/generate/stream') {
        state.generations++
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.end(['one ', 'two ', 'three'].map((token) => `event: message\ndata: ${JSON.stringify({ token })}\n\n`).join(''))
        return
      }
      res.writeHead(404); res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return state
}

async function runToEnd(url: string, key: string, count: number): Promise<Array<{ state: string; worker: string | null }>> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push((await api(url, 'POST', '/v1/generate', { key, body: { prompt: `p${i}`, models: ['shared/model'], max_length: 8 } })).body.id)
  const ends: Array<{ state: string; worker: string | null }> = []
  for (const id of ids) {
    for (let tries = 0; ; tries++) {
      const view = (await api(url, 'GET', `/v1/generate/${id}`, { key })).body
      if (['done', 'failed', 'cancelled'].includes(view.state)) { ends.push({ state: view.state, worker: view.worker ?? null }); break }
      if (tries > 300) throw new Error(`request ${id} did not end: ${JSON.stringify(view)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return ends
}

t.test('a worker whose backend dies mid-run leaves, no request fails, and it comes back with the backend', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const backend = await switchable(t, true)
  const sick = runScript(t, 'horde-worker.ts', ['--url', url, '--name', 'sick', '--backend', 'kobold', '--backend-url', backend.url, '--model', 'shared/model', '--probe-ms', '200'], { HORDE_API_KEY: owner.key })
  await sick.waitFor(/ready: worker sick/)
  const healthy = runScript(t, 'horde-worker.ts', ['--url', url, '--name', 'healthy', '--model', 'shared/model', '--delay-ms', '20'], { HORDE_API_KEY: owner.key })
  await healthy.waitFor(/ready: worker healthy/)

  const before = await runToEnd(url, owner.key, 4)
  t.ok(before.every((e) => e.state === 'done'), 'all done while both are up')

  backend.set(false)
  const during = await runToEnd(url, owner.key, 8)
  t.same(during.filter((e) => e.state !== 'done'), [], 'no request failed while the healthy worker served the model')
  t.ok(during.filter((e) => e.worker === 'healthy').length >= 7, 'the healthy worker took (nearly) all of them')
  await sick.waitFor(/backend down: .*503.*left the horde/)
  const failures = (sick.stderr().match(/: failed: kobold backend/g) ?? []).length
  t.ok(failures <= 1, `the sick worker failed at most one job before it left (${failures}); every failure logged with its reason`)

  backend.set(true)
  await sick.waitFor(/backend is back: rejoining the horde/)
  await sick.waitFor(/ready: worker sick[\s\S]*ready: worker sick/)
  sick.child.kill('SIGTERM')
  healthy.child.kill('SIGTERM')
  t.equal((await sick.exited).code, 0)
})

t.test('a backend that comes up late is waited for, and a config file sets the worker up', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const backend = await switchable(t, false)
  const fs = await import('node:fs')
  const os = await import('node:os')
  const path = await import('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-config-'))
  const file = path.join(dir, 'bridgeData.yaml')
  fs.writeFileSync(file, [
    `horde_url: "${url}"`, `api_key: "${owner.key}"`, 'worker_name: "late"', 'models_to_serve:', '  - shared/model',
    'max_length: 64', 'max_context_length: 2048', 'max_threads: 1', 'priority_usernames: ["nobody-here"]',
    'backend: kobold', `kai_url: "${backend.url}"`, 'dynamic_models: false', '',
  ].join('\n'))
  const late = runScript(t, 'horde-worker.ts', ['--config', file, '--probe-ms', '200'])
  await late.waitFor(/backend not ready: .*HTTP 503/)
  t.match(late.stderr(), /not used by this worker: dynamic_models/)
  await new Promise((r) => setTimeout(r, 500))
  t.notMatch(late.stderr(), /ready: worker/, 'it does not announce before the backend is up')
  t.equal(late.child.exitCode, null, 'and it does not exit')
  backend.set(true)
  await late.waitFor(/ready: worker late \(id \d+\) serving shared\/model/)
  t.match(late.stderr(), /warning: model shared\/model is not in the broker's registry/)
  await late.waitFor(/warning: no user is named nobody-here/)
  const [end] = await runToEnd(url, owner.key, 1)
  t.same(end, { state: 'done', worker: 'late' })
  await late.waitFor(/job [\w-]+: done, \d+ tokens/)
  late.child.kill('SIGINT')
  t.equal((await late.exited).code, 0, 'Ctrl-C: finish, then stop')
  t.match(late.stderr(), /SIGINT: finishing 0 running job\(s\)/)
})
