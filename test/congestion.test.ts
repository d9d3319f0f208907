import t from 'tap'
import { api, balanceOf, registerUser, setBalance, sleep, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'
import type { Peer } from './helpers/ws.js'

/** Serves jobs one at a time on `worker`, returning request ids in the order they arrived. */
async function drain(worker: Peer, count: number, text = 'ok'): Promise<string[]> {
  const order: string[] = []
  for (let i = 0; i < count; i++) {
    const job = await worker.next('job')
    order.push(job.forRequest)
    // Billed tokens are bounded by the time the worker took (docs/security.md): an answer sent
    // within a millisecond would be billed nothing. 50 ms is plenty for these few tokens.
    await sleep(50)
    serve(worker, job.job, [text])
  }
  return order
}

t.test('congestion: one worker serves in kudos order, FIFO among equal balances', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const names = ['rich', 'modest', 'zero', 'debtor', 'blocker'] as const
  const u = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await registerUser(url, n)]))) as Record<(typeof names)[number], { id: number; key: string }>
  await setBalance(broker, u.rich.id, 1000)
  await setBalance(broker, u.modest.id, 10)
  await setBalance(broker, u.debtor.id, -500)
  await setBalance(broker, u.blocker.id, 5000)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'only', models: ['unknown/model'] })
  t.teardown(() => worker.close())
  const sockets = { rich: await client(wsUrl, u.rich.key), modest: await client(wsUrl, u.modest.key), zero: await client(wsUrl, u.zero.key), debtor: await client(wsUrl, u.debtor.key), anon: await client(wsUrl) }
  t.teardown(() => Object.values(sockets).forEach((s) => s.close()))
  const blockerSocket = await client(wsUrl, u.blocker.key)
  t.teardown(() => blockerSocket.close())

  const blocker = await submit(blockerSocket, {})
  const blockerJob = await worker.next('job')
  t.equal(blockerJob.forRequest, blocker, 'the worker is busy from now on')
  // Mixed submission order.
  const ids = {
    debtor: await submit(sockets.debtor, {}),
    anon: await submit(sockets.anon, {}),
    modest: await submit(sockets.modest, {}),
    zero: await submit(sockets.zero, {}),
    rich1: await submit(sockets.rich, {}),
    rich2: await submit(sockets.rich, {}),
  }
  const position = await api(url, 'GET', `/v1/generate/${ids.debtor}`, { key: u.debtor.key })
  t.equal(position.body.position, 5, 'the debtor sees five requests ahead')
  serve(worker, blockerJob.job, ['done'])
  const order = await drain(worker, 6)
  t.same(order, [ids.rich1, ids.rich2, ids.modest, ids.anon, ids.zero, ids.debtor],
    'rich (1000) twice in order, modest (10), then Anonymous and zero (both 0) first come first served, then the debtor (-500)')
  t.ok((await balanceOf(broker, 0)) < 0, 'the Anonymous account sank into debt')
})

t.test('with idle workers everyone is served at once, whatever their kudos', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const debtor = await registerUser(url, 'debtor')
  await setBalance(broker, debtor.id, -10_000)
  const workers = await Promise.all([1, 2, 3, 4].map((i) => rawWorker(wsUrl, owner.key, { name: `w${i}` })))
  t.teardown(() => workers.forEach((w) => w.close()))
  const user = await client(wsUrl, debtor.key)
  const anon = await client(wsUrl)
  t.teardown(() => { user.close(); anon.close() })
  const submitted = [await submit(user, {}), await submit(anon, {}), await submit(user, {}), await submit(anon, {})]
  const jobs = await Promise.all(workers.map((w) => w.next('job', 2000)))
  t.same(jobs.map((j) => j.forRequest).sort(), [...submitted].sort(), 'four requests, four idle workers, all started')
})

t.test('a transfer moves a waiting request ahead; a payment moves one back', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const [a, b, c, patron] = await Promise.all(['alice', 'bob', 'carol', 'patron'].map((n) => registerUser(url, n)))
  await setBalance(broker, a.id, 100)
  await setBalance(broker, b.id, 50)
  await setBalance(broker, c.id, 10)
  await setBalance(broker, patron.id, 1000)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w', models: ['aphrodite/Llama-3-70B'] })
  t.teardown(() => worker.close())
  const sa = await client(wsUrl, a.key)
  const sb = await client(wsUrl, b.key)
  const sc = await client(wsUrl, c.key)
  t.teardown(() => { sa.close(); sb.close(); sc.close() })

  // Alice's first request runs and will cost her ~94 kudos (100 tokens on a 70B model).
  const expensive = await submit(sa, { max_length: 100 })
  const expensiveJob = await worker.next('job')
  t.equal(expensiveJob.forRequest, expensive)
  const pushedAt = performance.now()
  const ra = await submit(sa, {})
  const rb = await submit(sb, {})
  const rc = await submit(sc, {})
  const moved = await api(url, 'POST', '/v1/kudos/transfers', { key: patron.key, body: { to: 'carol', amount: 500 }, headers: { 'idempotency-key': 't1' } })
  t.equal(moved.status, 201)
  await broker.core.reprioritizer.idle()
  t.equal((await api(url, 'GET', `/v1/generate/${rc}`, { key: c.key })).body.position, 0, 'carol (510) is now first in line')

  // A 70B worker is paid for at most 100 tokens a second (docs/security.md): take the time 100 tokens need.
  await sleep(Math.max(0, 1100 - (performance.now() - pushedAt)))
  serve(worker, expensiveJob.job, ['x'.repeat(400)])
  const paid = await sa.next('done')
  t.ok(paid.kudos > 90, `alice paid ${paid.kudos}`)
  const order = await drain(worker, 3)
  t.same(order, [rc, rb, ra], 'carol (transfer) first, bob (50) next, alice (now in debt) last')
})
