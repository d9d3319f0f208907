/**
 * "A failed attempt is not offered again to the worker that failed it" outlives the broker
 * process: the job's data in Redis names the workers that failed it, so a restarted broker
 * (a new process, knowing nothing of the failure) still passes the failed worker by while
 * another worker can serve the request.
 */
import t from 'tap'
import { api, registerUser, sleep, startTestRedis } from './helpers/harness.js'
import { rawWorker, serve } from './helpers/pipeline.js'
import { startBrokerProcess } from './helpers/processes.js'

/** Workers know jobs by per-attempt ids, not request ids: each request here has its own prompt to tell them apart. */
async function submitRest(url: string, key: string, prompt: string): Promise<string> {
  const answer = await api(url, 'POST', '/v1/generate', { key, body: { prompt, models: ['demo/tiny'], max_length: 4 } })
  if (answer.status !== 202 && answer.status !== 200 && answer.status !== 201) throw new Error(`submit refused: ${JSON.stringify(answer.body)}`)
  return answer.body.id
}

async function waitForState(url: string, key: string, id: string, state: string, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const view = (await api(url, 'GET', `/v1/generate/${id}`, { key })).body
    if (view.state === state) return view
    if (Date.now() > deadline) throw new Error(`request ${id} is ${JSON.stringify(view)}, not ${state}`)
    await sleep(50)
  }
}

t.test('after a broker restart, a request is still not offered to the worker that failed it', async (t) => {
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url })
  const wsUrl = broker.url.replace(/^http/, 'ws')
  const flakyOwner = await registerUser(broker.url, 'flaky-owner')
  const steadyOwner = await registerUser(broker.url, 'steady-owner')
  const requester = await registerUser(broker.url, 'requester')

  // The steady worker is busy with its owner's request; the flaky one takes the next and fails it.
  const steady = await rawWorker(wsUrl, steadyOwner.key, { name: 'steady' })
  const blocker = await submitRest(broker.url, steadyOwner.key, 'blocker')
  t.equal((await steady.next('job', 15_000)).prompt, 'blocker', 'the steady worker is busy')
  const flaky = await rawWorker(wsUrl, flakyOwner.key, { name: 'flaky' })
  const request = await submitRest(broker.url, requester.key, 'request')
  const taken = await flaky.next('job', 15_000)
  t.equal(taken.prompt, 'request', 'the flaky worker takes the request')
  t.not(taken.job, request, 'the worker knows the job by its own id, not the request\'s')
  flaky.send({ type: 'fail', job: taken.job, reason: 'backend down' })
  await waitForState(broker.url, requester.key, request, 'waiting')

  // A new broker process: it never saw the failure.
  await broker.kill()
  await Promise.all([steady.closed, flaky.closed])
  await broker.restart()
  // The busy worker's job comes back once its lock has expired (the dead process held it).
  await waitForState(broker.url, steadyOwner.key, blocker, 'waiting')

  const steadyAgain = await rawWorker(wsUrl, steadyOwner.key, { name: 'steady' })
  t.teardown(() => steadyAgain.close())
  const blockerAgain = await steadyAgain.next('job', 15_000)
  t.equal(blockerAgain.prompt, 'blocker', 'the steady worker takes its owner\'s request first and is busy again')
  const flakyAgain = await rawWorker(wsUrl, flakyOwner.key, { name: 'flaky' })
  t.teardown(() => flakyAgain.close())
  // Nothing to wait for but time: the request is waiting and the flaky worker is free.
  await sleep(1500)
  t.same(flakyAgain.frames.filter((f) => f.type === 'job').map((f) => f.job), [], 'the worker that failed it is not offered it again')
  t.equal((await api(broker.url, 'GET', `/v1/generate/${request}`, { key: requester.key })).body.state, 'waiting', 'it waits for the worker that can serve it')

  serve(steadyAgain, blockerAgain.job, ['done'])
  const moved = await steadyAgain.next((f) => f.type === 'job' && f.prompt === 'request', 15_000)
  t.equal(moved.attempt, 2, 'the second attempt: passing the flaky worker by counted none')
  serve(steadyAgain, moved.job, ['ok'])
  const done = await waitForState(broker.url, requester.key, request, 'done')
  t.equal(done.worker, 'steady')
  t.same(flakyAgain.frames.filter((f) => f.type === 'job'), [], 'the flaky worker never got it back')
})
