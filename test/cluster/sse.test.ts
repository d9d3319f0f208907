/**
 * The streaming REST door across processes: an OpenAI-style completion with `stream: true`
 * posted on B, served by a worker on A. The server-sent deltas arrive in order while the
 * worker runs and make the whole text; the request is billed once.
 */
import t from 'tap'
import { eachStore, ws } from '../helpers/cluster.js'
import { auditDatabase, generationEntries } from '../helpers/faults.js'
import { rawWorker } from '../helpers/pipeline.js'
import { eventually, registerUser, sleep } from '../helpers/harness.js'

const PIECES = ['Once', ' upon', ' a', ' time', ' there', ' was']

eachStore(t, 'a streamed completion posted on B, served on A', 2, {}, async (t, cluster) => {
  const [a, b] = cluster.nodes
  const owner = await registerUser(a.url, 'sse-owner')
  const requester = await registerUser(b.url, 'sse-requester')
  const worker = await rawWorker(ws(a), owner.key, { name: 'sse-worker', models: ['demo/tiny'] })
  t.teardown(() => worker.close())
  // The worker streams only once B's client has read the previous delta: proof that the deltas are live.
  const response = await fetch(`${b.url}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${requester.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo/tiny', prompt: 'Tell me', max_tokens: 32, stream: true }),
  })
  t.equal(response.status, 200, 'the stream opens on B')
  const id = response.headers.get('x-horde-request-id')
  t.ok(id, 'with the request id')
  const job = await worker.next('job', 20_000)
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  const texts: string[] = []
  let finished = false
  const readEvent = async (): Promise<void> => {
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('')
        if (data === '') continue // a comment (keep-alive)
        if (data === '[DONE]') { finished = true; return }
        const text = JSON.parse(data).choices?.[0]?.text
        if (text) { texts.push(text); return }
        continue
      }
      const { value, done } = await reader.read()
      if (done) { finished = true; return }
      buffer += decoder.decode(value, { stream: true })
    }
  }
  for (const [seq, text] of PIECES.entries()) {
    worker.send({ type: 'chunk', job: job.job, seq, text })
    await readEvent()
    t.equal(texts.at(-1), text, `delta ${seq} arrived before the worker sent the next`)
  }
  await sleep(60)
  worker.send({ type: 'done', job: job.job, chunks: PIECES.length })
  while (!finished) await readEvent()
  t.same(texts, PIECES, 'every delta, in order, none twice')
  await eventually(async () => (await generationEntries(cluster.database)).get(id!) === 1, 10_000, 'one settlement')
  const report = await auditDatabase(cluster.database)
  t.ok(report.ok, `the ledger audits clean ${JSON.stringify(report.problems ?? [])}`)
})
