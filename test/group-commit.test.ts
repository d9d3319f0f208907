import path from 'node:path'
import t from 'tap'
import { openDb } from '../src/db/open.js'
import { createLedger } from '../src/ledger/ledger.js'
import { createAccounts } from '../src/accounts/accounts.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { tempDir } from './helpers/harness.js'

t.test('writes of one turn share one commit; a failing piece fails alone, its postings rolled back', async (t) => {
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
