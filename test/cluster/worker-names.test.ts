/**
 * One worker name across processes: the same name announced on A, then on B. The older
 * session (on A) is closed with 4409; its leaving does not delete the newer session's
 * registry entry, so the status of every process still shows the worker, and jobs go to it.
 */
import t from 'tap'
import { CloseCode } from '../../src/protocol/envelope.js'
import { eachStore, ws } from '../helpers/cluster.js'
import { client, rawWorker, serve, submit } from '../helpers/pipeline.js'
import { api, eventually, registerUser, sleep } from '../helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

eachStore(t, 'one worker name on A then on B: the older session closed with 4409, the newer one stays listed', 3, {}, async (t, cluster) => {
  const [a, b, c] = cluster.nodes
  const owner = await registerUser(a.url, 'names-owner')
  const listed = async (node: typeof a) => ((await api(node.url, 'GET', '/v1/status')).body.workers as Array<{ name: string }>).filter((w) => w.name === 'shared-name')
  const older = await rawWorker(ws(a), owner.key, { name: 'shared-name', models: [MODEL] })
  await eventually(async () => (await listed(c)).length === 1, 10_000, 'C to list the worker of A')
  const newer = await rawWorker(ws(b), owner.key, { name: 'shared-name', models: [MODEL] })
  t.teardown(() => { older.close(); newer.close() })
  const closed = await Promise.race([older.closed, sleep(10_000).then(() => null)])
  t.equal(closed?.code, CloseCode.Replaced, 'the session on A is closed with 4409')
  // Longer than the registry's read cache: what every process shows now is what Redis holds.
  await sleep(1500)
  for (const [name, node] of [['A', a], ['B', b], ['C', c]] as const) {
    t.equal((await listed(node)).length, 1, `${name} still lists the worker once`)
  }
  t.equal(newer.ws.readyState, newer.ws.OPEN, 'the newer session stays open')

  // The newer session serves: a request submitted on C runs on B's socket.
  const requester = await registerUser(c.url, 'names-requester')
  const user = await client(ws(c), requester.key)
  t.teardown(() => user.close())
  const id = await submit(user, { models: [MODEL], max_length: 16 })
  const job = await newer.next('job', 20_000)
  setTimeout(() => serve(newer, job.job, ['still', ' here']), 60)
  const done = await user.next((f) => f.type === 'done' && f.request === id, 20_000)
  t.equal(done.text, 'still here', 'the newer session served the request')
  t.equal(done.worker, 'shared-name', 'under the shared name')

  // And when the newer one leaves, the name goes from every status.
  newer.close()
  for (const [name, node] of [['A', a], ['B', b], ['C', c]] as const) {
    await eventually(async () => (await listed(node)).length === 0, 10_000, `${name} to drop the worker once it left`)
    t.pass(`${name} dropped the worker once its last session left`)
  }
})
