/**
 * @deprecated Transition only, deleted when the pipeline, the uptime payer and the status
 * source move onto the store ports: the old `ledger.run`/`ledger.runEach`, which hand a
 * drizzle handle and a `post` function to synchronous work, and a balance read that also
 * answers synchronously. They run on the store's committer, so those writes share its
 * transactions and its after-commit events.
 */
import { sql } from 'drizzle-orm'
import { ANONYMOUS_ID } from '../../accounts/anonymous.js'
import type { Db } from '../../db/open.js'
import { toKudos } from '../../ledger/amounts.js'
import type { EntryInput } from '../../ledger/posting-rules.js'
import type { AccountRecord } from '../ports.js'
import type { WriteResult } from './commit.js'
import { ACCOUNT_COLUMNS } from './ledger.js'
import type { SqliteStore } from './index.js'

/** @deprecated Work in the old shape: a drizzle handle (inside the transaction) and `post`. */
export type LegacyWork<T> = (tx: Db, post: (entry: EntryInput) => number) => T

/** @deprecated See the module comment. */
export interface LegacyTransactions {
  run<T>(work: LegacyWork<T>): T
  runEach<T>(works: Array<LegacyWork<T>>): Array<WriteResult<T>>
  /**
   * The ledger's `account`, awaitable like the port's, whose promise also carries the row's
   * fields at once: pipeline.ts still reads `ledger.account(id)?.balance` synchronously.
   */
  account(userId: number): Promise<AccountRecord | undefined>
}

/** @deprecated See the module comment. */
export function legacyTransactions(store: SqliteStore, db: Db): LegacyTransactions {
  const runEach = <T>(works: Array<LegacyWork<T>>) => store.committer.runEach(works.map((work) => (scope) => work(db, (entry) => scope.post(entry))))
  return {
    runEach,
    account(userId) {
      const row = db.get<AccountRecord | undefined>(sql`select ${sql.raw(ACCOUNT_COLUMNS)} from balances where user_id = ${userId}`)
      return Object.assign(Promise.resolve(row), row)
    },
    run(work) {
      const [result] = runEach([work])
      if (!result.ok) throw result.error
      return result.value
    },
  }
}

/** @deprecated The kudos leaderboard read synchronously through the drizzle handle (for gateway/status.ts). */
export function legacyTopKudos(db: Db, limit = 10): Array<{ username: string; kudos: number }> {
  const rows = db.all<{ username: string; balance: number }>(sql`select u.username as username, b.balance as balance
    from balances b join users u on u.id = b.user_id where b.user_id != ${ANONYMOUS_ID} order by b.balance desc, u.id limit ${limit}`)
  return rows.map((row) => ({ username: row.username, kudos: toKudos(row.balance) }))
}
