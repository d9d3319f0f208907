import t from 'tap'
import { api, balanceOf, grant, ledgerInvariant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { connect } from './helpers/ws.js'

t.test('a prompt reaches a waiting worker, chunks arrive in order, the ledger agrees', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  await grant(broker, requester.id, 100)

  const worker = await connect(`${wsUrl}/v1/worker`, owner.key)
  t.teardown(() => worker.close())
  const welcome = await worker.next('welcome')
  t.equal(welcome.protocol, 1)
  worker.send({ type: 'announce', id: 'a1', name: 'w1', models: ['koboldcpp/LLaMA2-13B-Tiefighter'], max_length: 512, max_context_length: 4096 })
  const ready = await worker.next('ready')
  t.equal(ready.id, 'a1')

  const client = await connect(`${wsUrl}/v1/client`, requester.key)
  t.teardown(() => client.close())
  await client.next('welcome')
  client.send({ type: 'submit', id: 's1', prompt: 'x'.repeat(2048), models: ['koboldcpp/LLaMA2-13B-Tiefighter'], max_length: 100 })
  const accepted = await client.next('accepted')
  t.equal(accepted.id, 's1')
  const job = await worker.next('job')
  t.equal(job.forRequest, accepted.request)
  t.equal(job.model, 'koboldcpp/LLaMA2-13B-Tiefighter')
  t.equal(job.prompt.length, 2048)

  const pieces = Array.from({ length: 25 }, (_, i) => `w${String(i).padStart(2, '0')} `)
  pieces.forEach((text, seq) => worker.send({ type: 'chunk', job: job.job, seq, text }))
  // 25 tokens take a 13B model at least 25/538 s: a worker that answers faster is paid at the
  // speed bound (economy/plausibility.ts), so this one takes a plausible 200 ms.
  await new Promise((resolve) => setTimeout(resolve, 200))
  worker.send({ type: 'done', job: job.job, chunks: pieces.length })

  const started = await client.next('started')
  t.equal(started.worker, 'w1')
  const chunks = []
  for (let i = 0; i < pieces.length; i++) chunks.push(await client.next('chunk'))
  t.same(chunks.map((c) => c.seq), pieces.map((_, i) => i), 'in order')
  t.equal(chunks.map((c) => c.text).join(''), pieces.join(''))
  const done = await client.next('done')
  t.equal(done.text, pieces.join(''))
  t.equal(done.tokens, 25, 'ceil(100 chars / 4)')
  // 25 tokens * 13/125 * 1 * ctx(512 prompt tokens) = 4.3024
  t.equal(done.kudos, 4.302)
  const settled = await worker.next('settled')
  t.equal(settled.kudos, done.kudos)
  t.equal(await balanceOf(broker, owner.id), done.kudos, 'the owner earned what the done message says')
  t.equal(Math.round((await balanceOf(broker, requester.id)) * 1000), 100_000 - Math.round(done.kudos * 1000), 'the requester paid the same')
  const status = await api(url, 'GET', `/v1/generate/${accepted.request}`, { key: requester.key })
  t.equal(status.body.state, 'done')
  t.equal(status.body.text, pieces.join(''))
  const inv = await ledgerInvariant(broker)
  t.equal(inv.sumBalances, inv.minted)
})
