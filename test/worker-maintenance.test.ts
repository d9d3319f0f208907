/**
 * Maintenance mode of the real worker program: SIGUSR2 lets the running job finish and
 * takes no new one until a second SIGUSR2; the request that came meanwhile waits, then runs.
 */
import t from 'tap'
import { api, eventually, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { runScript } from './helpers/process.js'

t.test('horde-worker: SIGUSR2 finishes the running job, takes no more, and a second SIGUSR2 resumes', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const worker = runScript(t, 'horde-worker.ts', ['--url', url, '--name', 'resting', '--delay-ms', '50'], { HORDE_API_KEY: owner.key })
  await worker.waitFor(/ready: worker resting/, 'stderr', 60_000)
  const submit = async () => (await api(url, 'POST', '/v1/generate', { key: owner.key, body: { prompt: 'p', models: ['demo/tiny'], max_length: 20 } })).body.id as string
  const view = async (id: string) => (await api(url, 'GET', `/v1/generate/${id}`, { key: owner.key })).body

  const first = await submit()
  // The worker knows jobs by their own ids (per attempt), not by request ids.
  const firstJob = (await worker.waitFor(/job ([\w-]+): started/))[1]
  worker.child.kill('SIGUSR2')
  await worker.waitFor(/maintenance on: finishing 1 running job\(s\), taking no new ones/)
  const second = await submit()
  await worker.waitFor(new RegExp(`job ${firstJob}: done, 20 tokens`), 'stderr', 30_000)
  t.equal((await view(first)).state, 'done', 'the running job finished')
  // The worker is free now; in maintenance it still takes nothing.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal((await view(second)).state, 'waiting', 'the request that came meanwhile waits')
  t.equal(worker.stderr().match(/: started/g)?.length, 1, 'the worker was not offered it')
  t.equal(worker.child.exitCode, null, 'the worker keeps running')

  worker.child.kill('SIGUSR2')
  await worker.waitFor(/maintenance off: taking jobs again/)
  await eventually(() => worker.stderr().match(/: done, 20 tokens/g)?.length === 2, 30_000, 'the worker to finish a second job')
  const end = await eventually(async () => { const v = await view(second); return v.state === 'done' ? v : undefined }, 10_000, 'the second request to finish')
  t.equal(end.worker, 'resting', 'it ran on the worker once maintenance was off')

  worker.child.kill('SIGTERM')
  t.equal((await worker.exited).code, 0, 'and it still stops cleanly')
})
