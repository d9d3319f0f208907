/**
 * The store contract: one set of cases every store passes, run against SQLite (a temp file)
 * and PostgreSQL (a fresh database, created and dropped here). "Two processes" are two store
 * instances on one database: two better-sqlite3 handles on one file, two pools on one
 * PostgreSQL database. The concurrency cases are the ones only a multi-writer store can get
 * wrong: transfers both ways at once, parallel settles of one request, parallel accepts at the cap.
 */
import path from 'node:path'
import t, { type Test } from 'tap'
import { openDb } from '../src/db/open.js'
import { ANONYMOUS_ID, UNFUNDED_ID } from '../src/economy/anonymous.js'
import { DuplicateEntryError, type BalanceChange } from '../src/economy/posting-rules.js'
import type { NewRequest, NewTransfer, Settlement, Store } from '../src/store/ports.js'
import { openPostgresStore } from '../src/store/postgres/index.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { tempDir } from './helpers/harness.js'
import { createTestDatabase } from './helpers/postgres.js'

/** Opens a new database and returns a way to open stores on it ("processes"), each closed in teardown. */
type Backend = (t: Test) => Promise<() => Promise<Store>>

const BACKENDS: Record<'sqlite' | 'postgres', Backend> = {
  async sqlite(t) {
    const file = path.join(tempDir(), 'db.sqlite')
    return async () => {
      const store = createSqliteStore(openDb(file))
      t.teardown(() => store.close())
      return store
    }
  },
  async postgres(t) {
    const url = await createTestDatabase(t, 'contract')
    return async () => {
      const store = await openPostgresStore(url)
      t.teardown(() => store.close())
      return store
    }
  },
}

const params = { models: ['m'], max_length: 80, max_context_length: 1024, params: {} }
const request = (id: string, userId: number, extra: Partial<NewRequest> = {}): NewRequest =>
  ({ id, userId, prompt: 'Once upon a time', params, clientIp: '10.0.0.1', createdAt: 1000, idempotencyKey: null, capabilityHash: null, ...extra })

const transfer = (senderId: number, recipientId: number, milli: number, key: string): NewTransfer => ({
  senderId, recipientId, amount: milli, memo: null, idempotencyKey: key, fingerprint: `${recipientId}:${milli}`, createdAt: 1,
  entry: { kind: 'transfer', ref: `${senderId}:${key}`, postings: [
    { userId: senderId, amount: -milli, category: 'sent', counterpartyId: recipientId },
    { userId: recipientId, amount: milli, category: 'received', counterpartyId: senderId },
  ] },
})

/** No credit line anywhere: the seed's rule, every payer's debt funds the worker. */
const NO_LIMITS = { anonymous: null, oauth: null, username: null }

const award = (store: Store, userId: number, milli: number) =>
  store.ledger.append({ kind: 'award', postings: [{ userId, amount: milli, category: 'awarded' }] })

async function people(store: Store, ...names: string[]) {
  return Promise.all(names.map(async (username) => (await store.accounts.createUser({ username, roles: [], createdAt: 1 })).user))
}

for (const [kind, backend] of Object.entries(BACKENDS)) {
  t.test(kind, async (t) => {
    t.test('requests: accepted once per key, capped, settled or ended exactly once', async (t) => {
      const store = await (await backend(t))()
      t.equal(store.kind, kind)
      t.equal(await store.health(), true)
      const [alice, bob] = await people(store, 'alice', 'bob')
      const { requests, workers, audit } = store
      const cap = { cap: 2, perAddress: false }
      await award(store, alice.id, 5000)
      t.same(await requests.accept(request('r1', alice.id, { idempotencyKey: 'k' }), cap), { id: 'r1', replayed: false, balance: 5000 })
      t.same(await requests.accept(request('r1b', alice.id, { idempotencyKey: 'k' }), cap), { id: 'r1', replayed: true, balance: 0 }, 'a retry names the first')
      await t.rejects(requests.accept(request('r1c', alice.id, { idempotencyKey: 'k', prompt: 'other' }), cap), { code: 'idempotency_conflict' })
      await requests.accept(request('r2', alice.id), cap)
      await t.rejects(requests.accept(request('r3', alice.id), cap), { code: 'too_many_active', message: 'At most 2 requests may wait or run at once' })
      const anonymous = { cap: 1, perAddress: true }
      await requests.accept(request('a1', ANONYMOUS_ID), anonymous)
      await t.rejects(requests.accept(request('a2', ANONYMOUS_ID), anonymous), { code: 'too_many_active' })
      await requests.accept(request('a3', ANONYMOUS_ID, { clientIp: '10.0.0.2', capabilityHash: 'ab'.repeat(32) }), anonymous)
      t.equal((await requests.byId('a3'))?.capabilityHash, 'ab'.repeat(32), 'the capability hash is kept with the request')
      t.equal((await requests.byId('a1'))?.capabilityHash, null, 'none when the submission made none')
      t.equal(await requests.count(), 4)
      t.equal(await requests.count({ userId: alice.id, state: 'waiting' }), 2)
      t.same((await requests.waitingAfter('a3', 10)).map((r) => r.id), ['r1', 'r2'])
      t.same((await requests.usersWaiting()).sort(), [ANONYMOUS_ID, alice.id].sort())
      t.same((await requests.byId('r1'))?.params, params, 'params come back as given')
      t.same(await requests.state('r1'), { state: 'waiting', userId: alice.id })

      const worker = await workers.register('gpu-1', bob.id, 2000)
      const changes: BalanceChange[] = []
      store.events.on('change', (c) => changes.push(c))
      const settlement: Settlement = {
        request: 'r1', outcome: 'done', text: 'the end', tokens: 40, reward: 1200, worker: { id: worker.id, name: worker.name, ownerId: bob.id }, model: 'm', finishedAt: 3000,
        preferred: false, creditLines: NO_LIMITS, bounded: false,
      }
      t.same((await Promise.all([requests.settle(settlement), requests.settle(settlement)])).map((s) => s !== false), [true, false], 'two settlements in one batch: the second writes nothing')
      t.same(changes.map((c) => [c.userId, c.delta, c.balance]), [[alice.id, -1200, 3800], [bob.id, 1200, 1200]], 'changes after commit, in entry order')
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

    t.test('workers, uptime, ledger reads', async (t) => {
      const store = await (await backend(t))()
      const [alice, bob] = await people(store, 'alice', 'bob')
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
      await t.rejects(workers.creditUptime([{ workerId: mine.id, ownerId: alice.id, ms: 1, milli: 1, ref: `${mine.id}:b1` }], 500), { message: `ledger entry uptime/${mine.id}:b1 already exists` })
      t.match(await workers.byName('gpu-1'), { uptimeMs: 60_000, earned: 700 }, 'the refused batch changed no counter')
      t.same((await workers.byNames(['gpu-2', 'gpu-1', 'none'])).map((w) => w.name).sort(), ['gpu-1', 'gpu-2'])
      t.same((await workers.byOwner(bob.id)).map((w) => w.name), ['gpu-2'])
      t.equal(await audit.mintedBy('uptime'), 1000)
      t.same((await ledger.top(5)).map((row) => row.username), ['alice', 'bob'], 'richest first, Anonymous never listed')
      t.same((await ledger.top(5, 1)).map((row) => row.username), ['bob'], 'a later page skips the first')
      t.same(await ledger.top(5, 2), [], 'past the end: nothing')
      const history = await ledger.entries(alice.id)
      t.match(history, [{ kind: 'uptime', category: 'uptime', amount: 700, ref: `${mine.id}:b1` }])
      t.match(await ledger.entry(history[0].id), { kind: 'uptime', ref: `${mine.id}:b1` })
      t.same(await ledger.entryByRef('uptime', `${mine.id}:b1`), { id: history[0].id })
      t.same((await audit.run()).problems, [])
    })

    t.test('accounts, keys, identities, transfers', async (t) => {
      const store = await (await backend(t))()
      const { accounts, identities, transfers, audit } = store
      const key = { lookup: 'L1', secretHash: 'h', name: 'first', scopes: ['all'], createdAt: 5 }
      const { user: alice, keyId } = await accounts.createUser({ username: 'Alice', roles: ['trusted'], createdAt: 1 }, key)
      await t.rejects(accounts.createUser({ username: 'alice', roles: [], createdAt: 1 }), { code: 'username_taken' }, 'names differ by more than case')
      t.same(await accounts.byName('ALICE'), alice)
      t.match(await accounts.keyByLookup('L1'), { id: keyId, userId: alice.id, scopes: ['all'], roles: ['trusted'], username: 'Alice', revokedAt: null })
      t.equal(await accounts.revokeKey(alice.id + 1, keyId!, 9), false, 'not your key')
      t.equal(await accounts.revokeKey(alice.id, keyId!, 9), true)
      t.equal(await accounts.isKeyActive(keyId!), false)
      t.match(await accounts.listKeys(alice.id), [{ id: keyId, revokedAt: 9, scopes: ['all'] }])
      await accounts.setRoles(alice.id, ['moderator'])
      t.same((await accounts.byId(alice.id))?.roles, ['moderator'])

      const profile = { provider: 'github', subject: '42', name: 'octo' }
      const logins = await Promise.all([identities.loginOrCreate(profile, ['octo', 'octo-2'], 10), identities.loginOrCreate(profile, ['octo', 'octo-2'], 11)])
      t.same(logins.map((l) => l.created), [true, false], 'two first logins racing make one user')
      t.equal(logins[0].user.id, logins[1].user.id)
      await t.rejects(identities.link(alice.id, profile, 12), { code: 'identity_taken' })
      t.match(await identities.forUser(logins[0].user.id), [{ provider: 'github', subject: '42', displayName: 'octo', lastLoginAt: 11 }])
      t.equal(await accounts.countUsers(), 3, 'Anonymous, Alice, octo')
      t.same((await accounts.byIds([alice.id, 999])).map((u) => u.id), [alice.id])

      await transfers.award({ kind: 'award', postings: [{ userId: alice.id, amount: 10_000, category: 'awarded' }] })
      const first = await transfers.transfer(transfer(alice.id, logins[0].user.id, 4000, 'k1'))
      t.equal(first.replayed, false)
      t.match(await transfers.transfer(transfer(alice.id, logins[0].user.id, 4000, 'k1')), { replayed: true, transfer: { id: first.transfer.id } })
      await t.rejects(transfers.transfer(transfer(alice.id, logins[0].user.id, 5000, 'k1')), { code: 'idempotency_conflict' })
      await t.rejects(transfers.transfer(transfer(alice.id, logins[0].user.id, 7000, 'k2')), { code: 'insufficient_kudos' }, 'only 6 left')
      t.same(await transfers.byKey(alice.id, 'k1'), first.transfer)
      t.same(await transfers.latest(), first.transfer)
      t.same((await accounts.byBalance(2, 0)).map((u) => [u.username, u.balance]), [['Alice', 6000], ['octo', 4000]])
      t.match(await audit.counts(), { users: 3, transfers: 1 })
      t.same((await audit.run()).problems, [])
    })

    t.test('two processes: transfers both ways at once neither deadlock nor overspend', async (t) => {
      const open = await backend(t)
      const [one, two] = [await open(), await open()]
      const [a, b] = await people(one, 'a', 'b')
      await award(one, a.id, 50_000)
      await award(one, b.id, 50_000)
      const sends = Array.from({ length: 40 }, (_, i) => {
        const [store, from, to] = i % 2 === 0 ? [one, a, b] : [two, b, a]
        return store.transfers.transfer(transfer(from.id, to.id, 3000, `both-${i}`))
      })
      const outcomes = await Promise.allSettled(sends)
      const failed = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[]
      t.same(failed.map((f) => f.reason.code).filter((code) => code !== 'insufficient_kudos'), [], 'no other error (no deadlock reached a caller)')
      const [ba, bb] = await Promise.all([one.ledger.account(a.id), one.ledger.account(b.id)])
      t.equal(ba!.balance + bb!.balance, 100_000, 'nothing created or lost')
      t.ok(ba!.balance >= 0 && bb!.balance >= 0, 'nobody spent what they did not have')
      t.same((await one.audit.run()).problems, [])
    })

    t.test('two processes: one sender overspending from both at once', async (t) => {
      const open = await backend(t)
      const [one, two] = [await open(), await open()]
      const [a, b] = await people(one, 'a', 'b')
      await award(one, a.id, 10_000)
      const outcomes = await Promise.allSettled([
        one.transfers.transfer(transfer(a.id, b.id, 7000, 'x1')),
        two.transfers.transfer(transfer(a.id, b.id, 7000, 'x2')),
      ])
      t.same(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected'], 'exactly one of two 7-kudo sends from 10 goes through')
      t.equal((await two.ledger.account(a.id))!.balance, 3000)
      const retries = await Promise.allSettled([one, two, one, two].map((store) => store.transfers.transfer(transfer(a.id, b.id, 1000, 'same-key'))))
      t.same(retries.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'])
      t.equal(await one.audit.countTransfers('same-key'), 1, 'one key, one transfer, however many processes retry it')
      t.equal((await one.ledger.account(a.id))!.balance, 2000)
      t.same((await one.audit.run()).problems, [])
    })

    t.test('settlement: preference never mints, credit lines by kind of payer, the suspicion flag', async (t) => {
      const store = await (await backend(t))()
      const { requests, workers, ledger, audit } = store
      const [owner, pal, plain] = await people(store, 'owner', 'pal', 'plain')
      const linked = (await store.identities.loginOrCreate({ provider: 'github', subject: '7', name: 'linked' }, ['linked'], 1)).user
      const worker = await workers.register('gpu', owner.id, 1)
      const lines = { anonymous: null, oauth: 3000, username: 1000 }
      const settle = async (id: string, userId: number, reward: number, extra: Partial<Settlement> = {}) => {
        await requests.accept(request(id, userId), { cap: 100, perAddress: userId === ANONYMOUS_ID })
        return requests.settle({
          request: id, outcome: 'done', text: 'x', tokens: 1, reward, worker: { id: worker.id, name: 'gpu', ownerId: owner.id }, model: 'm', finishedAt: 5,
          preferred: false, creditLines: lines, bounded: false, ...extra,
        })
      }
      const balance = async (userId: number) => (await ledger.account(userId))?.balance ?? 0
      await award(store, pal.id, 500)

      t.match(await settle('p1', pal.id, 1200, { preferred: true }), { charged: 500, earned: 500, unfunded: 0 }, 'a priority user pays at most what it holds above zero')
      t.match(await settle('p2', pal.id, 1200, { preferred: true }), { charged: 0, earned: 0, unfunded: 0 })
      t.match(await requests.byId('p2'), { state: 'done', kudos: 0 }, 'at zero it is served for free')
      t.equal(await balance(pal.id), 0, 'and never goes into debt for it')
      t.equal(await audit.countEntries('generation', 'p2'), 0, 'nothing moved: no entry')

      t.match(await settle('u1', plain.id, 800), { charged: 800, earned: 800, unfunded: 0 }, 'within the credit line the debt funds the worker')
      t.match(await settle('u2', plain.id, 800), { charged: 800, earned: 200, unfunded: 600 }, 'past it the rest is unfunded')
      t.match(await settle('u3', plain.id, 800), { charged: 800, earned: 0, unfunded: 800 })
      t.equal(await balance(plain.id), -2400, 'the requester still pays: its debt grows')
      t.match(await settle('o1', linked.id, 3500), { charged: 3500, earned: 3000, unfunded: 500 }, 'an OAuth-linked account has its own line')
      t.match(await settle('a1', ANONYMOUS_ID, 9000), { charged: 9000, earned: 9000, unfunded: 0 }, 'Anonymous: no limit by default')
      t.equal(await balance(UNFUNDED_ID), 1900, 'the unfunded credits sit on the system account')
      t.equal(await balance(owner.id), 500 + 800 + 200 + 3000 + 9000, 'the worker earned only the funded parts')
      t.match(await workers.byName('gpu'), { earned: 13_500, jobs: 7 })
      t.match(await requests.byId('u3'), { kudos: 800 }, 'the request records what its requester was charged')
      t.same((await ledger.top(10)).map((row) => row.userId).includes(UNFUNDED_ID), false, 'the system account is not a kudos holder')

      const flags = []
      for (let i = 0; i < 4; i++) flags.push((await settle(`b${i}`, owner.id, 0, { bounded: true })) as { flagged: boolean })
      t.same(flags.map((f) => f.flagged), [false, false, true, false], 'flagged once: by the third bounded delivery (3 of 10 jobs)')
      t.match(await workers.byName('gpu'), { boundedJobs: 4, jobs: 11, flaggedAt: 5 })
      const report = await audit.run()
      t.same(report.problems, [])
      t.equal(report.sumBalances, report.minted, 'the books balance')
    })

    t.test('two processes: parallel settles of one request pay once', async (t) => {
      const open = await backend(t)
      const stores = [await open(), await open()]
      const [alice, bob] = await people(stores[0], 'alice', 'bob')
      const worker = await stores[0].workers.register('gpu', bob.id, 1)
      const ids = Array.from({ length: 10 }, (_, i) => `req-${i}`)
      for (const id of ids) await stores[0].requests.accept(request(id, alice.id), { cap: 100, perAddress: false })
      const settle = (store: Store, id: string) => store.requests.settle({
        request: id, outcome: 'done', text: 'x', tokens: 1, reward: 100, worker: { id: worker.id, name: 'gpu', ownerId: bob.id }, model: 'm', finishedAt: 2,
        preferred: false, creditLines: NO_LIMITS, bounded: false,
      })
      const results = await Promise.all(ids.flatMap((id) => [settle(stores[0], id), settle(stores[1], id), settle(stores[1], id)]))
      for (let i = 0; i < ids.length; i++) t.equal(results.slice(i * 3, i * 3 + 3).filter(Boolean).length, 1, `${ids[i]} settled once`)
      t.equal((await stores[1].ledger.account(bob.id))!.balance, 1000)
      t.match(await stores[1].workers.byName('gpu'), { jobs: 10 })
      t.same((await stores[1].audit.run()).problems, [])
    })

    t.test('two processes: parallel accepts at the cap accept exactly the cap', async (t) => {
      const open = await backend(t)
      const stores = [await open(), await open(), await open()]
      const [alice] = await people(stores[0], 'alice')
      const cap = { cap: 3, perAddress: false }
      const outcomes = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => stores[i % 3].requests.accept(request(`c${i}`, alice.id), cap)))
      t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 3)
      t.same([...new Set(outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason.code))], ['too_many_active'])
      t.equal(await stores[2].requests.count({ userId: alice.id, state: 'waiting' }), 3)
      const anon = { cap: 2, perAddress: true }
      const anonymous = await Promise.allSettled(Array.from({ length: 9 }, (_, i) => stores[i % 3].requests.accept(request(`n${i}`, ANONYMOUS_ID, { clientIp: '10.9.9.9' }), anon)))
      t.equal(anonymous.filter((o) => o.status === 'fulfilled').length, 2, 'per address for the Anonymous account')
      const keyed = await Promise.all(stores.map((store) => store.requests.accept(request(`k-${store.kind}-${Math.random()}`, ANONYMOUS_ID, { clientIp: '10.8.8.8', idempotencyKey: '10.8.8.8:same' }), anon)))
      t.equal(new Set(keyed.map((k) => k.id)).size, 1, 'one idempotency key, one request, across processes')
    })

    t.test('two processes: one (kind, ref) posted from three at once is written once', async (t) => {
      const open = await backend(t)
      const stores = [await open(), await open(), await open()]
      const [alice, bob] = await people(stores[0], 'alice', 'bob')
      const [mine, theirs] = [await stores[0].workers.register('gpu-a', alice.id, 1), await stores[0].workers.register('gpu-b', bob.id, 1)]
      // The same uptime batch (same refs) credited by every process, the credits in a different order each time.
      const batch = [
        { workerId: mine.id, ownerId: alice.id, ms: 1000, milli: 50, ref: `${mine.id}:same` },
        { workerId: theirs.id, ownerId: bob.id, ms: 1000, milli: 70, ref: `${theirs.id}:same` },
      ]
      const outcomes = await Promise.allSettled(stores.map((store, i) => store.workers.creditUptime(i % 2 ? [...batch].reverse() : batch, 2)))
      t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, 'one process credits the batch')
      const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason)
      t.ok(refused.length === 2 && refused.every((error) => error instanceof DuplicateEntryError), `the others meet the unique (kind, ref), none a deadlock: ${refused.join('; ')}`)
      t.equal(await stores[1].audit.countEntries('uptime'), 2)
      t.match(await stores[2].workers.byName('gpu-a'), { uptimeMs: 1000, earned: 50 }, 'counters moved once')
      t.equal((await stores[2].ledger.account(bob.id))!.balance, 70)

      const award = (store: Store) => store.ledger.append({ kind: 'award', ref: 'once', postings: [{ userId: alice.id, amount: 1000, category: 'awarded' }] })
      const awards = await Promise.allSettled(stores.map(award))
      t.equal(awards.filter((o) => o.status === 'fulfilled').length, 1, 'one award with one ref')
      t.equal((await stores[0].ledger.account(alice.id))!.balance, 1050)
      t.same((await stores[0].audit.run()).problems, [])
    })

    t.test('two processes: one name claimed at once', async (t) => {
      const open = await backend(t)
      const stores = [await open(), await open(), await open()]
      const users = await Promise.allSettled(stores.map((store, i) => store.accounts.createUser({ username: ['Carol', 'carol', 'CAROL'][i], roles: [], createdAt: 1 })))
      t.equal(users.filter((o) => o.status === 'fulfilled').length, 1, 'one user named carol')
      t.same(users.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason.code), ['username_taken', 'username_taken'])
      const [a, b] = await people(stores[0], 'a', 'b')
      const claims = await Promise.allSettled(stores.map((store, i) => store.workers.register('gpu', i % 2 ? b.id : a.id, 10 + i)))
      const owners = new Set(claims.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<{ ownerId: number }>).value.ownerId))
      t.equal(owners.size, 1, 'one owner of the worker name, whoever came first')
      t.ok(claims.filter((o) => o.status === 'rejected').every((o) => (o as PromiseRejectedResult).reason.code === 'worker_name_taken'), 'the other owner is refused')
      t.equal((await stores[1].workers.byNames(['gpu'])).length, 1)
    })

    t.test('two processes: settles and transfers crossing many accounts never deadlock a caller', async (t) => {
      const open = await backend(t)
      const stores = [await open(), await open(), await open()]
      const users = await people(stores[0], 'u0', 'u1', 'u2', 'u3', 'u4', 'u5')
      for (const u of users) await award(stores[0], u.id, 100_000)
      const worker = await stores[0].workers.register('gpu', users[5].id, 1)
      const ids = Array.from({ length: 30 }, (_, i) => `x-${i}`)
      for (const [i, id] of ids.entries()) await stores[0].requests.accept(request(id, users[i % 5].id), { cap: 100, perAddress: false })
      // Each process runs its writes in its own order, so its batches lock the balance rows in
      // orders the others' do not: PostgreSQL aborts the deadlocked batches, which run again.
      const writes: Array<Promise<unknown>> = []
      for (let round = 0; round < 3; round++) {
        for (const [s, store] of stores.entries()) {
          for (let k = 0; k < 10; k++) {
            const i = (k * (s + 1) + round * 7) % 30
            const [from, to] = [users[(i + s) % 6], users[(i + s * 2 + 1) % 6]]
            if (from.id !== to.id) writes.push(store.transfers.transfer(transfer(from.id, to.id, 100, `r${round}-s${s}-k${k}`)))
            // The payer is the request's user (users[i % 5]); no credit line holds the payment back.
            writes.push(store.requests.settle({
              request: ids[i], outcome: 'done', text: 'x', tokens: 1, reward: 100, worker: { id: worker.id, name: 'gpu', ownerId: users[5].id }, model: 'm', finishedAt: 2,
              preferred: false, creditLines: NO_LIMITS, bounded: false,
            }))
          }
        }
      }
      const outcomes = await Promise.allSettled(writes)
      t.same(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)), [], 'every write answered, none with an error')
      t.equal(await stores[1].audit.countEntries('generation'), 30, 'each request paid once')
      const balances = await Promise.all(users.map(async (u) => (await stores[2].ledger.account(u.id))!.balance))
      t.equal(balances.reduce((x, y) => x + y, 0), 600_000, 'nothing created or lost')
      t.same((await stores[0].audit.run()).problems, [])
    })
  })
}
