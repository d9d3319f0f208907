import t from 'tap'
import { api, registerUser, startTestRedis } from './helpers/harness.js'
import { FAULT_ENV, startBrokerProcess } from './helpers/processes.js'
import { runScript } from './helpers/process.js'

t.test('horde survives a broker restart and prints the whole text once', async (t) => {
  const redis = await startTestRedis(t)
  const broker = await startBrokerProcess(t, { redisUrl: redis.url, env: FAULT_ENV })
  const owner = await registerUser(broker.url, 'owner')
  // Nobody serves the model yet: the request waits while the broker goes down and comes back.
  const horde = runScript(t, 'horde.ts', ['a story', '--model', 'late/model', '--max-length', '12', '--url', broker.url, '--key', owner.key])
  const id = (await horde.waitFor(/^request ([\w-]+)$/m))[1]
  await horde.waitFor(/^queued: position \d+ \(no connected worker can serve it yet\)$/m)
  t.notMatch(horde.stderr(), /eta/, 'no ETA while no worker can serve it')
  // The drain closes a socket with nothing running here at once, with 1012: reconnect elsewhere.
  await broker.stop()
  await horde.waitFor(/the broker went away \(1012\); reconnecting/)
  await broker.restart()
  await horde.waitFor(/reconnected; following the request again/, 'stderr', 30_000)
  const worker = runScript(t, 'horde-worker.ts', ['--url', broker.url, '--key', owner.key, '--name', 'w', '--model', 'late/model'])
  await worker.waitFor(/ready: worker w/, 'stderr', 30_000)
  const { code } = await horde.exited
  t.equal(code, 0, `exit 0; stderr:\n${horde.stderr()}`)
  const status = await api(broker.url, 'GET', `/v1/generate/${id}`, { key: owner.key })
  t.equal(status.body.state, 'done')
  t.equal(horde.stdout(), status.body.text, 'stdout is the whole text, once')
  worker.child.kill('SIGTERM')
  await worker.exited
})
