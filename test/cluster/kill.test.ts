/**
 * kill -9 of the worker's process during 30 streams whose clients are on another process:
 * every request ends done once (finished by a worker on a live process, after `restarted`)
 * or failed and unbilled; none is settled twice; the ledger audits clean.
 */
import t from 'tap'
import { eachStore, ws } from '../helpers/cluster.js'
import { auditDatabase, generationEntries, waitAllEnded } from '../helpers/faults.js'
import { client, rawWorker, serve, submit } from '../helpers/pipeline.js'
import { eventually, registerUser, sleep } from '../helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'
const STREAMS = 30
const ENV = { JOB_LOCK_SECONDS: '3', HEARTBEAT_SECONDS: '1' }

eachStore(t, `kill -9 of the worker's process during ${STREAMS} streams`, 2, ENV, async (t, cluster) => {
  const [a, b] = cluster.nodes
  const owner = await registerUser(b.url, 'kill-owner')
  const requester = await registerUser(b.url, 'kill-requester')
  const doomed = await rawWorker(ws(a), owner.key, { name: 'doomed', models: [MODEL], threads: STREAMS })
  t.teardown(() => doomed.close())
  const user = await client(ws(b), requester.key)
  t.teardown(() => user.close())
  const ids: string[] = []
  for (let i = 0; i < STREAMS; i++) ids.push(await submit(user, { prompt: `story ${i}`, models: [MODEL], max_length: 32 }))
  const jobs: any[] = []
  for (let i = 0; i < STREAMS; i++) jobs.push(await doomed.next('job', 20_000))
  // Every stream half-way: two chunks each, relayed to the client on B.
  for (const job of jobs) for (const [seq, text] of ['first', ' try'].entries()) doomed.send({ type: 'chunk', job: job.job, seq, text })
  await eventually(() => user.frames.filter((f) => f.type === 'chunk').length >= STREAMS * 2, 20_000, 'the first chunks on B')
  await a.kill()

  const rescuer = await rawWorker(ws(b), owner.key, { name: 'rescuer', models: [MODEL], threads: STREAMS })
  t.teardown(() => rescuer.close())
  let served = 0
  const serving = (async () => {
    while (served < STREAMS) {
      const job = await rescuer.next('job', 60_000)
      served++
      setTimeout(() => serve(rescuer, job.job, ['second', ' try']), 60)
    }
  })()
  const ended = await waitAllEnded(b.url, requester.key, ids, 90_000)
  await serving.catch(() => undefined)
  t.equal(ended.size, STREAMS, `every request ended (${ended.size} of ${STREAMS})`)
  const entries = await generationEntries(cluster.database)
  let done = 0
  for (const id of ids) {
    const view = ended.get(id)
    if (view?.state === 'done') {
      done++
      t.equal(view.text, 'second try', `${id}: the text of the attempt that finished`)
      t.equal(entries.get(id), 1, `${id}: settled once`)
      const frames = user.frames.filter((f) => f.request === id)
      t.equal(frames.filter((f) => f.type === 'done').length, 1, `${id}: done once on B`)
      t.ok(frames.some((f) => f.type === 'restarted'), `${id}: the client on B was told to discard the lost attempt`)
      const attempt = frames.filter((f) => f.type === 'started').at(-1)?.attempt
      const chunks = frames.filter((f) => f.type === 'chunk' && f.attempt === attempt)
      t.same(chunks.map((f) => f.text), ['second', ' try'], `${id}: the finishing attempt's chunks, once each`)
    } else {
      t.equal(view?.state, 'failed', `${id}: failed if not done`)
      t.notOk(entries.get(id), `${id}: a failed request is not billed`)
    }
  }
  t.ok(done > 0, `${done} of ${STREAMS} finished on the live process`)
  await sleep(300)
  const report = await auditDatabase(cluster.database)
  t.ok(report.ok, `the ledger audits clean ${JSON.stringify(report.problems ?? [])}`)
})
