import path from 'node:path'
import t from 'tap'
import { openDb } from '../src/db/open.js'
import { createLedger } from '../src/ledger/ledger.js'
import { createGroupCommit } from '../src/ledger/group-commit.js'
import { createAccounts } from '../src/accounts/accounts.js'
import { tempDir } from './helpers/harness.js'

t.test('writes of one turn share one commit; a failing piece fails alone, its postings rolled back', async (t) => {
  const opened = openDb(path.join(tempDir(), 'db.sqlite'))
  t.teardown(() => opened.close())
  const ledger = createLedger(opened.db)
  const accounts = createAccounts(opened.db)
  const a = accounts.createUser('alice')
  const published: number[] = []
  ledger.events.on('change', (c) => published.push(c.delta))
  let commits = 0
  const counting: Pick<typeof ledger, 'runEach'> = { runEach: (works) => { commits++; return ledger.runEach(works) } }
  const group = createGroupCommit(counting)
  const award = (kudos: number) => group.run((_tx, post) => post({ kind: 'award', postings: [{ userId: a.id, amount: kudos * 1000, category: 'awarded' }] }))
  const failing = group.run((_tx, post) => {
    post({ kind: 'award', postings: [{ userId: a.id, amount: 999_000, category: 'awarded' }] })
    throw new Error('boom after posting')
  })
  const results = await Promise.allSettled([award(1), failing, award(2), award(3)])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
  t.equal(commits, 1, 'four writes, one transaction')
  t.equal(ledger.account(a.id)!.balance, 6000, 'the failed piece\'s posting was rolled back')
  t.same(published, [1000, 2000, 3000], 'and never published')
  await award(4)
  t.equal(commits, 2, 'the next turn is the next batch')
})
