import path from 'node:path'
import t, { type Test } from 'tap'
import { ANONYMOUS_ID } from '../src/economy/anonymous.js'
import { openDb } from '../src/db/open.js'
import type { BalanceChange } from '../src/economy/posting-rules.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import type { NewRequest } from '../src/store/ports.js'
import { tempDir } from './helpers/harness.js'

async function setUp(t: Test) {
  const store = createSqliteStore(openDb(path.join(tempDir(), 'db.sqlite')))
  t.teardown(() => store.close())
  const user = (name: string) => store.accounts.createUser({ username: name, roles: [], createdAt: 1 }).then((r) => r.user)
  const [alice, bob] = await Promise.all([user('alice'), user('bob')])
  return { store, alice, bob }
}

const params = { models: ['m'], max_length: 80, max_context_length: 1024, params: {} }
const request = (id: string, userId: number, extra: Partial<NewRequest> = {}): NewRequest =>
  ({ id, userId, prompt: 'Once upon a time', params, clientIp: '10.0.0.1', createdAt: 1000, idempotencyKey: null, capabilityHash: null, ...extra })

t.test('requests: accepted once per key, capped, settled or ended exactly once', async (t) => {
  const { store, alice, bob } = await setUp(t)
  const { requests, workers, ledger, audit } = store
  const cap = { cap: 2, perAddress: false }
  await ledger.append({ kind: 'award', postings: [{ userId: alice.id, amount: 5000, category: 'awarded' }] })
  t.same(await requests.accept(request('r1', alice.id, { idempotencyKey: 'k' }), cap), { id: 'r1', replayed: false, balance: 5000 })
  t.same(await requests.accept(request('r1b', alice.id, { idempotencyKey: 'k' }), cap), { id: 'r1', replayed: true, balance: 0 }, 'a retry names the first')
  await t.rejects(requests.accept(request('r1c', alice.id, { idempotencyKey: 'k', prompt: 'other' }), cap), { code: 'idempotency_conflict' })
  await requests.accept(request('r2', alice.id), cap)
  await t.rejects(requests.accept(request('r3', alice.id), cap), { code: 'too_many_active', message: 'At most 2 requests may wait or run at once' })
  const anonymous = { cap: 1, perAddress: true }
  await requests.accept(request('a1', ANONYMOUS_ID), anonymous)
  await t.rejects(requests.accept(request('a2', ANONYMOUS_ID), anonymous), { message: 'At most 1 requests may wait or run at once per address for anonymous use' })
  await requests.accept(request('a3', ANONYMOUS_ID, { clientIp: '10.0.0.2' }), anonymous)
  t.equal(await requests.count(), 4)
  t.equal(await requests.count({ userId: alice.id, state: 'waiting' }), 2)
  t.same((await requests.waitingAfter('a3', 10)).map((r) => r.id), ['r1', 'r2'])
  t.same((await requests.usersWaiting()).sort(), [ANONYMOUS_ID, alice.id].sort())
  t.same((await requests.byId('r1'))?.params, params, 'params come back as given')

  const worker = await workers.register('gpu-1', bob.id, 2000)
  const changes: BalanceChange[] = []
  store.events.on('change', (c) => changes.push(c))
  const settlement = {
    request: 'r1', outcome: 'done' as const, text: 'the end', tokens: 40, reward: 1200, worker: { id: worker.id, name: worker.name, ownerId: bob.id }, model: 'm', finishedAt: 3000,
    preferred: false, creditLines: { anonymous: null, oauth: null, username: null }, bounded: false,
  }
  const [first, second] = await Promise.all([requests.settle(settlement), requests.settle(settlement)])
  t.same([first !== false, second], [true, false], 'two settlements racing in one batch: the second writes nothing')
  t.same(changes.map((c) => [c.userId, c.delta, c.balance]), [[alice.id, -1200, 3800], [bob.id, 1200, 1200]], 'changes after commit')
  t.match(await requests.byId('r1'), { state: 'done', text: 'the end', tokens: 40, kudos: 1200, workerName: 'gpu-1', finishedAt: 3000 })
  t.match(await workers.byName('gpu-1'), { jobs: 1, tokens: 40, earned: 1200 })
  t.equal(await audit.countEntries('generation', 'r1'), 1)

  t.equal(await requests.end('r2', 'cancelled', { finishedAt: 4000 }), true)
  t.equal(await requests.end('r2', 'failed', { error: 'expired' }), false, 'an ended request is not ended again')
  t.equal(await requests.settle({ ...settlement, request: 'r2', reward: 0 }), false, 'nor settled')
  t.match(await requests.byId('r2'), { state: 'cancelled', tokens: 0, kudos: 0, error: null })
  t.same((await requests.expiredBefore(2000, 10)).map((r) => r.id).sort(), ['a1', 'a3'])
  t.equal((await requests.latest({ state: 'done' }))?.id, 'r1')
  t.same((await audit.run()).problems, [])
})

t.test('workers: a name belongs to its first owner; uptime credits post and count in one write', async (t) => {
  const { store, alice, bob } = await setUp(t)
  const { workers, ledger, audit } = store
  const mine = await workers.register('gpu-1', alice.id, 100)
  t.match(await workers.register('gpu-1', alice.id, 200), { id: mine.id, lastSeenAt: 200 }, 'the owner announces again')
  await t.rejects(workers.register('gpu-1', bob.id, 300), { code: 'worker_name_taken' })
  const other = await workers.register('gpu-2', bob.id, 300)
  await workers.creditUptime([
    { workerId: mine.id, ownerId: alice.id, ms: 60_000.4, milli: 700, ref: `${mine.id}:b1` },
    { workerId: other.id, ownerId: bob.id, ms: 30_000, milli: 300, ref: `${other.id}:b1` },
  ], 400)
  t.match(await workers.byName('gpu-1'), { uptimeMs: 60_000, earned: 700, lastSeenAt: 400 })
  t.equal((await ledger.account(alice.id))?.earnedUptime, 700)
  await t.rejects(workers.creditUptime([{ workerId: mine.id, ownerId: alice.id, ms: 1, milli: 1, ref: `${mine.id}:b1` }], 500), { message: `ledger entry uptime/${mine.id}:b1 already exists` }, 'a batch is never credited twice')
  t.match(await workers.byName('gpu-1'), { uptimeMs: 60_000, earned: 700 }, 'and the refused batch changed no counter')
  t.same((await workers.byNames(['gpu-2', 'gpu-1', 'none'])).map((w) => w.name).sort(), ['gpu-1', 'gpu-2'])
  t.same((await workers.byOwner(bob.id)).map((w) => w.name), ['gpu-2'])
  t.equal(await audit.mintedBy('uptime'), 1000)
  t.same((await ledger.top(5)).map((row) => row.username), ['alice', 'bob'], 'richest first, Anonymous never listed')
  t.same((await audit.run()).problems, [])
})
