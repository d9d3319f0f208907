/**
 * Cancel on process B of a job whose worker is on process A: the cancel crosses the control
 * bus, the worker is told to stop, the request ends cancelled for the client on B, and the
 * requester pays for what was delivered, once, as on one process.
 */
import t from 'tap'
import { eachStore, ws } from '../helpers/cluster.js'
import { auditDatabase, generationEntries } from '../helpers/faults.js'
import { client, rawWorker, submit } from '../helpers/pipeline.js'
import { api, eventually, registerUser, sleep } from '../helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

eachStore(t, 'cancel on B of a job running on A', 2, {}, async (t, cluster) => {
  const [a, b] = cluster.nodes
  const owner = await registerUser(a.url, 'cancel-owner')
  const requester = await registerUser(b.url, 'cancel-requester')
  const worker = await rawWorker(ws(a), owner.key, { name: 'cancel-worker', models: [MODEL] })
  t.teardown(() => worker.close())
  const user = await client(ws(b), requester.key)
  t.teardown(() => user.close())
  const id = await submit(user, { models: [MODEL], max_length: 100 })
  const job = await worker.next('job', 20_000)
  worker.send({ type: 'chunk', job: job.job, seq: 0, text: 'abcdefgh' })
  await user.next((f) => f.type === 'chunk' && f.request === id, 20_000)
  await sleep(60)
  user.send({ type: 'cancel', id: 'c', request: id })
  await user.next((f) => f.type === 'cancel_accepted' && f.id === 'c', 10_000)
  const stop = await worker.next('cancel', 10_000)
  t.equal(stop.job, job.job, 'the worker on A is told to stop')
  const cancelled = await user.next((f) => f.type === 'cancelled' && f.request === id, 10_000)
  t.equal(cancelled.text, 'abcdefgh', 'cancelled carries what was delivered')
  t.equal(cancelled.tokens, 2, 'pays for 8 characters = 2 tokens, as on one process')
  t.ok(cancelled.kudos > 0, 'the delivered part is paid')
  worker.send({ type: 'chunk', job: job.job, seq: 1, text: 'late' })
  t.equal((await worker.next('error', 10_000)).code, 'not_your_job', 'chunks after the cancel are refused')
  for (const node of [a, b]) {
    const view = await api(node.url, 'GET', `/v1/generate/${id}`, { key: requester.key })
    t.equal(view.body.state, 'cancelled', `${node === a ? 'A' : 'B'} shows it cancelled`)
    t.equal(view.body.text, 'abcdefgh', `${node === a ? 'A' : 'B'} shows the delivered text`)
  }
  await sleep(300)
  t.equal(user.frames.filter((f) => f.type === 'cancelled').length, 1, 'cancelled once')
  await eventually(async () => (await generationEntries(cluster.database)).get(id) === 1, 10_000, 'one settlement')
  const report = await auditDatabase(cluster.database)
  t.ok(report.ok, `the ledger audits clean ${JSON.stringify(report.problems ?? [])}`)
})
