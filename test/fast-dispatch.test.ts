/**
 * The dispatch fast path (docs/performance.md): a new request that a free worker of ours can
 * serve is queued and claimed for it while the accept commits. What must hold: the worker
 * gets the job, the client hears `accepted` only after the commit, and an accept that fails
 * (the active-request cap, the database) withdraws the job from its worker and bills nothing.
 * The crash between the push and the commit is test/faults/fast-dispatch-crash.test.ts.
 */
import t from 'tap'
import Database from 'better-sqlite3'
import pg from 'pg'
import { client, rawWorker, serve } from './helpers/pipeline.js'
import { balanceOf, eventually, grant, ledgerInvariant, registerUser, sleep, startBroker, startTestRedis } from './helpers/harness.js'

const MODEL = 'koboldcpp/LLaMA2-13B-Tiefighter'

async function fastCount(broker: { services: { metrics: { fastDispatches: { get(): Promise<{ values: Array<{ labels: Record<string, unknown>; value: number }> }> } } } }, claimed: string): Promise<number> {
  const { values } = await broker.services.metrics.fastDispatches.get()
  return values.find((v) => v.labels.claimed === claimed)?.value ?? 0
}

t.test('a request a free worker serves takes the fast path, streams and settles as before', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'fast-owner')
  const requester = await registerUser(url, 'fast-requester')
  await grant(broker, requester.id, 100)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'fast-worker', models: [MODEL] })
  const peer = await client(wsUrl, requester.key)
  t.teardown(() => { worker.close(); peer.close() })
  // After `ready` the dispatcher first looks for queued work for the worker; the fast path
  // needs the worker free, which on a slow machine (or store) comes a moment later.
  await eventually(() => [...broker.core.workforce.online].some((w) => w.free > 0), 10_000, 'the worker to be free')

  peer.send({ type: 'submit', id: 'a', prompt: 'Once upon a time', models: [MODEL], max_length: 16 })
  const job = await worker.next('job')
  const accepted = await peer.next('accepted')
  t.equal(accepted.request, job.forRequest, 'the worker holds the accepted request')
  t.equal(await fastCount(broker as any, 'own'), 1, 'the claim behind the add took the new job')
  await sleep(60)
  serve(worker, job.job, ['Hello', ' there'])
  const done = await peer.next('done')
  t.equal(done.text, 'Hello there')
  const row = await broker.services.store.requests.byId(job.forRequest)
  t.equal(row?.state, 'done', 'the request row is settled')
  t.ok((await balanceOf(broker, owner.id)) > 0, 'the worker was paid')
  t.same((await ledgerInvariant(broker)).problems, [], 'the ledger audits clean')

  // A keyed submission commits first (a retry must find it): no fast path.
  peer.send({ type: 'submit', id: 'b', prompt: 'Again', models: [MODEL], max_length: 16, idempotency_key: 'k1' })
  const second = await worker.next('job')
  t.equal(await fastCount(broker as any, 'own'), 1, 'a keyed submission took the usual path')
  await sleep(60)
  serve(worker, second.job, ['Hi'])
  await peer.next((f) => f.type === 'done' && f.request === second.forRequest)
})

t.test('an accept the active-request cap refuses withdraws the job its worker already got, billing nothing', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { MAX_ACTIVE_PER_USER: '1', SUBMITS_PER_SECOND: '100' } })
  const owner = await registerUser(url, 'cap-owner')
  const requester = await registerUser(url, 'cap-requester')
  await grant(broker, requester.id, 100)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'cap-worker', models: [MODEL], threads: 2 })
  const peer = await client(wsUrl, requester.key)
  t.teardown(() => { worker.close(); peer.close() })
  // Both slots must be free: while the dispatcher's first look for queued work holds one,
  // the second submission would see no free worker and be refused before any push.
  await eventually(() => [...broker.core.workforce.online].some((w) => w.free === 2), 10_000, 'both of the worker\'s slots to be free')
  const ownerBefore = await balanceOf(broker, owner.id)
  const requesterBefore = await balanceOf(broker, requester.id)

  // Both see a free slot; both accepts land in one group commit, and the cap lets one through.
  peer.send({ type: 'submit', id: 'one', prompt: 'first', models: [MODEL], max_length: 16 })
  peer.send({ type: 'submit', id: 'two', prompt: 'second', models: [MODEL], max_length: 16 })
  const answers = [
    await peer.next((f) => (f.type === 'accepted' || f.type === 'error') && f.id === 'one'),
    await peer.next((f) => (f.type === 'accepted' || f.type === 'error') && f.id === 'two'),
  ]
  const refused = answers.filter((f) => f.type === 'error')
  const accepted = answers.filter((f) => f.type === 'accepted')
  t.equal(refused.length, 1, 'one submission is refused')
  t.equal(refused[0]?.code, 'too_many_active', 'by the active-request cap')
  t.equal(accepted.length, 1, 'the other is accepted')
  t.equal(await fastCount(broker as any, 'own'), 1, 'the accepted one took the fast path')

  // The worker got both jobs: the refused one is stopped at once.
  const jobs = [await worker.next('job'), await worker.next('job')]
  const withdrawn = jobs.find((j) => j.forRequest !== accepted[0].request)
  t.ok(withdrawn, 'the refused request had reached the worker')
  const cancel = await worker.next('cancel')
  t.equal(cancel.job, withdrawn.job, 'and is withdrawn from it')
  t.equal(await broker.services.store.requests.byId(withdrawn.forRequest), undefined, 'the refused request was never recorded')

  // The worker answers the withdrawn job anyway: it is not its job any more.
  serve(worker, withdrawn.job, ['stale'])
  const refusedChunk = await worker.next('error')
  t.equal(refusedChunk.code, 'not_your_job')
  await sleep(60)
  const kept = jobs.find((j) => j.forRequest === accepted[0].request)
  serve(worker, kept.job, ['kept'])
  await peer.next((f) => f.type === 'done' && f.request === kept.forRequest)
  const settled = await worker.next('settled')
  t.equal(settled.job, kept.job, 'only the recorded request is settled')
  t.equal(await broker.services.store.audit.countEntries('generation', withdrawn.forRequest), 0, 'nothing was billed for the withdrawn job')
  t.equal(await broker.services.store.audit.countEntries('generation', kept.forRequest), 1, 'the kept one is billed once')
  const paid = (await balanceOf(broker, owner.id)) - ownerBefore
  t.equal(requesterBefore - (await balanceOf(broker, requester.id)), paid, 'the requester paid exactly what the worker earned, for one job')
  t.same((await ledgerInvariant(broker)).problems, [], 'the ledger audits clean')
})

t.test('an accept whose commit fails withdraws the job and tells the client; nothing is billed', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl, database } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'lock-owner')
  const requester = await registerUser(url, 'lock-requester')
  await grant(broker, requester.id, 100)
  const worker = await rawWorker(wsUrl, owner.key, { name: 'lock-worker', models: [MODEL] })
  const peer = await client(wsUrl, requester.key)
  t.teardown(() => { worker.close(); peer.close() })
  // The fast path needs the worker free (see the first test): only then does the job reach it before the commit.
  await eventually(() => [...broker.core.workforce.online].some((w) => w.free > 0), 10_000, 'the worker to be free')

  if (database.startsWith('postgres')) {
    // PostgreSQL: a trigger refuses the insert of the request's row, so the accept's write fails.
    const side = new pg.Client({ connectionString: database })
    await side.connect()
    t.teardown(() => side.end())
    await side.query(`create function refuse_requests() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$`)
    await side.query('create trigger refuse_requests before insert on requests for each row execute function refuse_requests()')
    peer.send({ type: 'submit', id: 'locked', prompt: 'blocked', models: [MODEL], max_length: 16 })
    await eventually(() => peer.frames.some((f) => (f.type === 'accepted' || f.type === 'error') && f.id === 'locked'), 15_000, 'the answer to the refused submission')
    await side.query('drop trigger refuse_requests on requests')
  } else {
    // Another connection holds SQLite's write lock past the broker's busy timeout (5 s): its commit fails.
    const side = new Database(database)
    t.teardown(() => side.close())
    side.prepare('BEGIN IMMEDIATE').run()
    peer.send({ type: 'submit', id: 'locked', prompt: 'blocked', models: [MODEL], max_length: 16 })
    // The process is blocked in the commit until SQLite gives up; let go of the lock after that.
    await sleep(100)
    side.prepare('ROLLBACK').run()
  }
  const answer = await peer.next((f) => (f.type === 'accepted' || f.type === 'error') && f.id === 'locked', 15_000)
  t.equal(answer.type, 'error', 'the client hears the submission failed')
  t.equal(answer.code, 'internal')
  const job = await worker.next('job')
  const cancel = await worker.next('cancel')
  t.equal(cancel.job, job.job, 'the job that reached the worker is withdrawn')
  t.equal(await broker.services.store.requests.byId(job.forRequest), undefined, 'no request was recorded')
  t.equal(await broker.services.store.audit.countEntries('generation', job.forRequest), 0, 'nothing billed')
  await eventually(async () => (await broker.services.store.requests.byId(job.forRequest)) === undefined && !broker.core.runner.busyWith(job.forRequest), 5000, 'the withdrawn job to be gone')

  // The worker is free again, and the next request takes the fast path and is served.
  peer.send({ type: 'submit', id: 'after', prompt: 'after', models: [MODEL], max_length: 16 })
  const next = await worker.next('job')
  await sleep(60)
  serve(worker, next.job, ['fine'])
  const done = await peer.next('done')
  t.equal(done.request, next.forRequest)
  t.same((await ledgerInvariant(broker)).problems, [], 'the ledger audits clean')
})
