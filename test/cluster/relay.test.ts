/**
 * Cross-process relay: a worker on process A, its clients on B and C. Every chunk reaches
 * the client in order and `done` comes once, billed once; a client that moves from B to C
 * mid-stream attaches there and gets the rest with no gap and no duplicate; a view of a
 * running request on a process that does not hold its worker has the text so far.
 */
import t from 'tap'
import { eachStore, ws } from '../helpers/cluster.js'
import { auditDatabase, generationEntries } from '../helpers/faults.js'
import { client, rawWorker, submit } from '../helpers/pipeline.js'
import { api, eventually, registerUser, sleep } from '../helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'
const PIECES = Array.from({ length: 24 }, (_, i) => `p${String(i).padStart(2, '0')} `)

eachStore(t, 'worker on A, socket client on B: every chunk in order, done once, billed once', 3, {}, async (t, cluster) => {
  const [a, b, c] = cluster.nodes
  const owner = await registerUser(a.url, 'relay-owner')
  const requester = await registerUser(b.url, 'relay-requester')
  const worker = await rawWorker(ws(a), owner.key, { name: 'relay-worker', models: [MODEL] })
  t.teardown(() => worker.close())
  const peer = await client(ws(b), requester.key)
  t.teardown(() => peer.close())
  const id = await submit(peer, { prompt: 'tell me', models: [MODEL], max_length: 64 })
  const job = await worker.next('job', 20_000)
  t.equal(job.request ?? id, id, 'the worker on A got the request submitted on B')
  for (const [seq, text] of PIECES.entries()) {
    worker.send({ type: 'chunk', job: job.job, seq, text })
    if (seq % 6 === 5) await sleep(20)
  }
  await sleep(60)
  worker.send({ type: 'done', job: job.job, chunks: PIECES.length })
  const done = await peer.next((f) => f.type === 'done' && f.request === id, 20_000)
  t.equal(done.text, PIECES.join(''), 'done carries the whole text')
  const started = peer.frames.filter((f) => f.type === 'started' && f.request === id)
  t.equal(started.length, 1, 'started once')
  const chunks = peer.frames.filter((f) => f.type === 'chunk' && f.request === id)
  t.same(chunks.map((f) => f.seq), PIECES.map((_, i) => i), 'every chunk, in order, none twice')
  t.equal(chunks.map((f) => f.text).join(''), PIECES.join(''), 'the chunks make the text')
  await sleep(300)
  t.equal(peer.frames.filter((f) => f.type === 'done').length, 1, 'done once')
  // REST on the third process: the final view, the same text.
  const view = await api(c.url, 'GET', `/v1/generate/${id}`, { key: requester.key })
  t.equal(view.body.state, 'done', 'GET on C: done')
  t.equal(view.body.text, PIECES.join(''), 'GET on C: the whole text')
  t.ok(view.body.kudos > 0, 'the requester paid')
  await eventually(async () => (await generationEntries(cluster.database)).get(id) === 1, 10_000, 'one settlement')
  const report = await auditDatabase(cluster.database)
  t.ok(report.ok, `the ledger audits clean ${JSON.stringify(report.problems ?? [])}`)
})

eachStore(t, 'a client moving from B to C mid-stream; a view on a process without the worker has the text so far', 3, {}, async (t, cluster) => {
  const [a, b, c] = cluster.nodes
  const owner = await registerUser(a.url, 'move-owner')
  const requester = await registerUser(b.url, 'move-requester')
  const worker = await rawWorker(ws(a), owner.key, { name: 'move-worker', models: [MODEL] })
  t.teardown(() => worker.close())
  const onB = await client(ws(b), requester.key)
  const id = await submit(onB, { prompt: 'tell me', models: [MODEL], max_length: 64 })
  const job = await worker.next('job', 20_000)
  const half = PIECES.length / 2
  for (let seq = 0; seq < half; seq++) worker.send({ type: 'chunk', job: job.job, seq, text: PIECES[seq] })
  await onB.next((f) => f.type === 'chunk' && f.request === id && f.seq === half - 1, 20_000)
  const seenOnB = onB.frames.filter((f) => f.type === 'chunk' && f.request === id)
  t.equal(seenOnB.length, half, 'B relayed the first half')
  onB.close()

  // A process that does not hold the worker answers with the text so far.
  const soFar = PIECES.slice(0, half).join('')
  const rest = await eventually(async () => {
    const view = await api(c.url, 'GET', `/v1/generate/${id}`, { key: requester.key })
    return view.body.text === soFar ? view : undefined
  }, 10_000, 'GET on C to show the text so far')
  t.equal(rest!.body.state, 'running', 'GET on C: running')
  t.equal(rest!.body.worker, 'move-worker', 'GET on C names the worker')

  // The client reconnects to C and attaches: the view's text, then only what follows it.
  const onC = await client(ws(c), requester.key)
  t.teardown(() => onC.close())
  onC.send({ type: 'attach', id: 'move', request: id })
  const attached = await onC.next((f) => f.type === 'attached' && f.id === 'move', 10_000)
  t.equal(attached.state, 'running', 'attached on C: running')
  t.equal(attached.text, soFar, 'attached on C: the text so far')
  t.equal(attached.attempt, 1, 'attached on C: the attempt')
  // The moving client itself resumes on C after its last chunk: no text again, only what follows.
  const moved = await client(ws(c), requester.key)
  t.teardown(() => moved.close())
  moved.send({ type: 'attach', id: 'resume', request: id, after: { attempt: 1, seq: half - 1 } })
  const resumedView = await moved.next((f) => f.type === 'attached' && f.id === 'resume', 10_000)
  t.equal(resumedView.resumed, true, 'attach after its last chunk: resumed')
  // A client that lost the last chunks in flight resumes after seq 5: C resends 6 .. half-1 first.
  const lagging = await client(ws(c), requester.key)
  t.teardown(() => lagging.close())
  lagging.send({ type: 'attach', id: 'lag', request: id, after: { attempt: 1, seq: 5 } })
  t.equal((await lagging.next((f) => f.type === 'attached' && f.id === 'lag', 10_000)).resumed, true, 'attach after seq 5: resumed')
  await lagging.next((f) => f.type === 'chunk' && f.seq === half - 1, 10_000)
  // After a chunk of another attempt there is nothing to resume from: the view's text stands.
  const stale = await client(ws(c), requester.key)
  t.teardown(() => stale.close())
  stale.send({ type: 'attach', id: 'stale', request: id, after: { attempt: 2, seq: 0 } })
  const staleView = await stale.next((f) => f.type === 'attached' && f.id === 'stale', 10_000)
  t.equal(staleView.resumed, false, 'attach after another attempt: not resumed')
  t.equal(staleView.text, soFar, 'and the view has the text so far')
  for (let seq = half; seq < PIECES.length; seq++) worker.send({ type: 'chunk', job: job.job, seq, text: PIECES[seq] })
  await sleep(60)
  worker.send({ type: 'done', job: job.job, chunks: PIECES.length })
  const done = await onC.next((f) => f.type === 'done' && f.request === id, 20_000)
  const after = onC.frames.filter((f) => f.type === 'chunk' && f.request === id)
  t.same(after.map((f) => f.seq), PIECES.slice(half).map((_, i) => half + i), 'C sent the rest: no gap, no duplicate')
  t.equal(attached.text + after.map((f) => f.text).join(''), PIECES.join(''), 'the view plus the rest is the whole text')
  t.equal(done.text, PIECES.join(''), 'done on C carries the whole text')
  await moved.next((f) => f.type === 'done' && f.request === id, 20_000)
  const movedChunks = moved.frames.filter((f) => f.type === 'chunk' && f.request === id)
  t.same(movedChunks.map((f) => f.seq), PIECES.slice(half).map((_, i) => half + i), 'the moved client got seq half.. once each')
  t.equal(seenOnB.map((f) => f.text).join('') + movedChunks.map((f) => f.text).join(''), PIECES.join(''), 'its chunks from B and from C make the whole text')
  await lagging.next((f) => f.type === 'done' && f.request === id, 20_000)
  const laggingChunks = lagging.frames.filter((f) => f.type === 'chunk' && f.request === id)
  t.same(laggingChunks.map((f) => f.seq), PIECES.slice(6).map((_, i) => 6 + i), 'the lagging client got seq 6.. once each, in order')
  await sleep(300)
  t.equal(onC.frames.filter((f) => f.type === 'done').length, 1, 'done once')

  // A fresh attach on B (no worker there either) once it has ended: the final view.
  const again = await client(ws(b), requester.key)
  t.teardown(() => again.close())
  again.send({ type: 'attach', id: 'late', request: id })
  const late = await again.next((f) => f.type === 'attached' && f.id === 'late', 10_000)
  t.equal(late.state, 'done', 'a late attach on B: done')
  t.equal(late.text, PIECES.join(''), 'a late attach on B: the whole text')
  await eventually(async () => (await generationEntries(cluster.database)).get(id) === 1, 10_000, 'one settlement')
  const report = await auditDatabase(cluster.database)
  t.ok(report.ok, `the ledger audits clean ${JSON.stringify(report.problems ?? [])}`)
})
