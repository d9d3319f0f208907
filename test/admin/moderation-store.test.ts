/**
 * The moderation store's contract, on SQLite and PostgreSQL alike: each change and its trail
 * row together, a change that changes nothing writes nothing, the feed reads forward from a
 * cursor, flags show on the user, key and worker records, and an award's entry mints what the
 * audit counts. Two stores on one database stand for two broker processes.
 */
import path from 'node:path'
import t, { type Test } from 'tap'
import { openDb } from '../../src/db/open.js'
import type { Store } from '../../src/store/ports.js'
import { openPostgresStore } from '../../src/store/postgres/index.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { tempDir } from '../helpers/harness.js'
import { createTestDatabase } from '../helpers/postgres.js'

const BACKENDS: Record<'sqlite' | 'postgres', (t: Test) => Promise<() => Promise<Store>>> = {
  async sqlite(t) {
    const file = path.join(tempDir(), 'db.sqlite')
    return async () => {
      const store = createSqliteStore(openDb(file))
      t.teardown(() => store.close())
      return store
    }
  },
  async postgres(t) {
    const url = await createTestDatabase(t, 'moderation')
    return async () => {
      const store = await openPostgresStore(url)
      t.teardown(() => store.close())
      return store
    }
  },
}

const as = (reason: string, at = 5) => ({ actor: { id: null, name: 'cli:test' }, reason, at })

for (const [name, backend] of Object.entries(BACKENDS)) {
  t.test(`${name}: moderation changes and their trail`, async (t) => {
    const open = await backend(t)
    const one = await open()
    const two = await open()
    const { user: alice } = await one.accounts.createUser({ username: 'alice', roles: [], createdAt: 1 },
      { lookup: 'L1', secretHash: 'h', name: 'k', scopes: ['all'], createdAt: 1 })
    const worker = await one.workers.register('w1', alice.id, 1)
    t.same([worker.trusted, worker.pausedAt, worker.pausedReason], [false, null, null], 'a new worker: untrusted, not paused')
    t.equal(alice.suspendedAt, null)
    const start = await two.moderation.lastActionId()

    const grant = await one.moderation.setRoles(alice.id, ['moderator'], 'role_grant', { ...as('helps'), details: { role: 'moderator' } })
    t.match(grant, { action: 'role_grant', actor: 'cli:test', actorId: null, targetUserId: alice.id, target: 'alice', reason: 'helps', details: { role: 'moderator' }, createdAt: 5 })
    t.equal(await one.moderation.setRoles(alice.id, ['moderator'], 'role_grant', as('again')), null, 'the same roles again: nothing written')
    t.same((await two.accounts.byId(alice.id))!.roles, ['moderator'], 'another process reads the role')

    t.ok(await one.moderation.setSuspended(alice.id, true, as('spam', 7)))
    t.equal(await two.moderation.setSuspended(alice.id, true, as('spam twice')), null, 'suspended twice (from another process): one change')
    t.equal((await two.accounts.byId(alice.id))!.suspendedAt, 7)
    t.equal((await two.accounts.keyByLookup('L1'))!.suspendedAt, 7, 'authentication sees it with the key')
    t.same(await two.moderation.suspendedUsers(), [alice.id])

    t.ok(await one.moderation.setTrusted(worker.id, true, as('known')))
    t.ok(await one.moderation.setPaused(worker.id, true, as('junk output', 9)))
    const row = await two.workers.byName('w1')
    t.same([row!.trusted, row!.pausedAt, row!.pausedReason], [true, 9, 'junk output'], 'the worker row carries both flags')
    t.match(await two.moderation.workerByName('w1'), { name: 'w1', owner: 'alice', trusted: true, pausedReason: 'junk output' })
    t.equal((await two.moderation.workers({ ownerId: alice.id })).length, 1)
    t.ok(await one.moderation.setPaused(worker.id, false, as('fixed')))
    t.same([(await two.workers.byName('w1'))!.pausedAt, (await two.workers.byName('w1'))!.pausedReason], [null, null], 'unpaused: the reason goes too')

    const { entryId, action } = await one.moderation.award({ kind: 'award', memo: 'thanks', postings: [{ userId: alice.id, amount: 2500, category: 'awarded' }] }, as('thanks'))
    t.match(action.details, { amount: 2500, entry: entryId })
    t.equal((await two.ledger.account(alice.id))!.balance, 2500)
    const report = await two.audit.run()
    t.equal(report.ok, true, report.problems.join('; '))
    t.equal(report.minted, 2500)

    const feed = await two.moderation.actions({ after: start })
    t.same(feed.map((a) => a.action), ['role_grant', 'user_suspend', 'worker_trust', 'worker_pause', 'worker_unpause', 'award'], 'the feed: oldest first from the cursor')
    t.same((await two.moderation.actions({ targetWorkerId: worker.id })).map((a) => a.action), ['worker_unpause', 'worker_pause', 'worker_trust'], 'by worker, newest first')
    t.equal(await two.moderation.lastActionId(), feed.at(-1)!.id)
    t.same((await two.moderation.usersWithRole('moderator')).map((u) => u.username), ['alice'])
    t.same(await two.moderation.usersWithRole('admin'), [])
  })
}
