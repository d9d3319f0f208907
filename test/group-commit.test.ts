import path from 'node:path'
import t from 'tap'
import { openDb } from '../src/db/open.js'
import { createLedger } from '../src/ledger/ledger.js'
import { createAccounts } from '../src/accounts/accounts.js'
import { openPostgresStore } from '../src/store/postgres/index.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { tempDir } from './helpers/harness.js'
import { createTestDatabase } from './helpers/postgres.js'

t.test('SQLite: writes of one turn share one commit; a failing piece fails alone, its postings rolled back', async (t) => {
  let commits = 0
  const store = createSqliteStore(openDb(path.join(tempDir(), 'db.sqlite')), { onCommit: () => commits++ })
  t.teardown(() => store.close())
  const ledger = createLedger(store)
  const accounts = createAccounts(store)
  const a = await accounts.createUser('alice')
  commits = 0
  const published: number[] = []
  ledger.events.on('change', (c) => published.push(c.delta))
  const award = (kudos: number) => ledger.award({ userId: a.id, amount: kudos * 1000 })
  const failing = store.committer.run((scope) => {
    scope.post({ kind: 'award', postings: [{ userId: a.id, amount: 999_000, category: 'awarded' }] })
    throw new Error('boom after posting')
  })
  const results = await Promise.allSettled([award(1), failing, award(2), award(3)])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
  t.equal(commits, 1, 'four writes, one transaction')
  t.equal((await ledger.account(a.id))!.balance, 6000, 'the failed piece\'s posting was rolled back')
  t.same(published, [1000, 2000, 3000], 'and never published')
  await award(4)
  t.equal(commits, 2, 'the next turn is the next batch')
})

t.test('PostgreSQL: writes of one turn share one commit; a failing piece fails alone; a deadlocked batch runs again', async (t) => {
  let commits = 0
  let retries = 0
  const url = await createTestDatabase(t, 'group')
  const store = await openPostgresStore(url, { onCommit: () => commits++, onRetry: () => retries++ })
  t.teardown(() => store.close())
  const ledger = createLedger(store)
  const accounts = createAccounts(store)
  const a = await accounts.createUser('alice')
  commits = 0
  const published: number[] = []
  ledger.events.on('change', (c) => published.push(c.delta))
  const award = (kudos: number) => ledger.award({ userId: a.id, amount: kudos * 1000 })
  const failing = store.committer.run(async (scope) => {
    await scope.post({ kind: 'award', postings: [{ userId: a.id, amount: 999_000, category: 'awarded' }] })
    throw new Error('boom after posting')
  })
  const results = await Promise.allSettled([award(1), failing, award(2), award(3)])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
  t.equal(commits, 1, 'four writes, one transaction')
  t.equal((await ledger.account(a.id))!.balance, 6000, 'the failed piece\'s posting was rolled back')
  t.same(published, [1000, 2000, 3000], 'and never published')
  await award(4)
  t.equal(commits, 2, 'the next turn is the next batch')

  // Two batches locking two balance rows in opposite orders (each write alone keeps id
  // order; a batch holds all its writes' locks): PostgreSQL aborts one, which runs again whole.
  // PostgreSQL picks which of the two batches to abort: count the runs-again of both stores.
  const other = await openPostgresStore(url, { onRetry: () => retries++ })
  t.teardown(() => other.close())
  const b = await accounts.createUser('bob')
  // Both batches hold their first row before either asks for its second (a run again passes at once).
  let arrived = 0
  let open!: () => void
  const bothHold = new Promise<void>((resolve) => { open = resolve })
  const hold = (store: typeof other, first: number, second: number) => store.committer.run(async (scope) => {
    await scope.post({ kind: 'award', postings: [{ userId: first, amount: 1000, category: 'awarded' }] })
    if (++arrived === 2) open()
    await bothHold
    await scope.post({ kind: 'award', postings: [{ userId: second, amount: 1000, category: 'awarded' }] })
  })
  retries = 0
  const before = [(await ledger.account(a.id))!.balance, (await ledger.account(b.id))!.balance]
  const crossed = await Promise.allSettled([hold(store, a.id, b.id), hold(other, b.id, a.id)])
  t.same(crossed.map((r) => r.status), ['fulfilled', 'fulfilled'], 'no deadlock reaches a caller')
  t.equal(retries, 1, 'the aborted batch (of either store) was run again, once')
  t.same([(await ledger.account(a.id))!.balance, (await ledger.account(b.id))!.balance], before.map((n) => n + 2000), 'each write counted once')
  t.same((await store.audit.run()).problems, [])
})
