/**
 * Group commit on PostgreSQL, the same strategy as the SQLite store's (sqlite/commit.ts):
 * the writes that arrive in one event-loop turn share one transaction on one connection,
 * each in its own savepoint, so one that throws is rolled back alone and only its caller sees
 * the error. Promises settle after COMMIT, and balance changes are emitted only then.
 *
 * One batch runs at a time: writes that arrive while a batch commits form the next one, so
 * under load a batch grows to what one commit round trip lets through. The writes are async
 * (each statement is a round trip) but run one after another inside the batch, so no two
 * interleave on the connection.
 *
 * Unlike SQLite, other processes write at the same time. Each write locks what it touches in
 * a fixed order (balance rows by user id, advisory locks first), but a batch holds the locks
 * of all its writes until COMMIT, so two batches of different processes can still deadlock;
 * PostgreSQL then aborts one of them (40P01). That batch is run again from the start: its
 * writes touched only the database, and nothing was acknowledged or published yet.
 */
import type { EventEmitter } from 'node:events'
import type pg from 'pg'
import type { BalanceChange, EntryInput } from '../../economy/posting-rules.js'
import type { StoreEvents } from '../ports.js'

/** What a write is handed inside the transaction. */
export interface PgScope {
  /** The batch's connection: every statement of the write goes through it. */
  readonly db: pg.ClientBase
  /**
   * Appends a ledger entry (checked against the posting rules) and returns its id.
   * `fundedBy`: that user's posting may not take their balance below zero (throws `insufficient_kudos`).
   */
  post(entry: EntryInput, options?: { fundedBy?: number }): Promise<number>
}

export type PgWrite<T> = (scope: PgScope) => Promise<T>

/** Appends one entry on `db` inside a transaction someone else holds; returns the changes to publish after commit. */
export type PgPoster = (db: pg.ClientBase, entry: EntryInput, options?: { fundedBy?: number }) => Promise<{ entryId: number; changes: BalanceChange[] }>

export interface PgCommitter {
  /** Queues `work` for this turn's batch; resolves with its result once the batch has committed. */
  run<T>(work: PgWrite<T>): Promise<T>
  /** Resolves when every queued write has been committed (close waits for it). */
  drain(): Promise<void>
}

export interface PgCommitterOptions {
  /** Most writes in one transaction. */
  maxBatch?: number
  /** Times a batch aborted by a deadlock or a serialization failure is run again. */
  retries?: number
  /** Called after each committed batch with its number of writes (metrics; tests count commits). */
  onCommit?: (writes: number) => void
  /** Called when a batch aborted by a deadlock or a serialization failure is run again (metrics; tests count them). */
  onRetry?: (error: unknown) => void
}

interface Pending {
  work: PgWrite<unknown>
  resolve(value: unknown): void
  reject(error: unknown): void
}

type Result = { ok: true; value: unknown } | { ok: false; error: unknown }

/** Deadlock detected, serialization failure: the whole transaction must be run again. */
const RETRYABLE = new Set(['40P01', '40001'])
const isRetryable = (error: unknown) => RETRYABLE.has((error as { code?: string } | null)?.code ?? '')

class RetryBatch extends Error {
  constructor(override readonly cause: unknown) { super('batch aborted') }
}

/** The group committer on `pool`: `post` appends entries, `events` gets their changes after each commit. */
export function createPgCommitter(pool: pg.Pool, post: PgPoster, events: EventEmitter<StoreEvents>, options: PgCommitterOptions = {}): PgCommitter {
  const maxBatch = options.maxBatch ?? 500
  const retries = options.retries ?? 5
  let pending: Pending[] = []
  let scheduled = false
  let running: Promise<void> | undefined

  async function attempt(db: pg.ClientBase, works: Pending[], collected: BalanceChange[]): Promise<Result[]> {
    const results: Result[] = []
    await db.query('begin')
    for (const p of works) {
      const mark = collected.length
      const scope: PgScope = {
        db,
        async post(entry, postOptions) {
          const { entryId, changes } = await post(db, entry, postOptions)
          collected.push(...changes)
          return entryId
        },
      }
      await db.query('savepoint w')
      try {
        results.push({ ok: true, value: await p.work(scope) })
        await db.query('release savepoint w')
      } catch (error) {
        if (isRetryable(error)) throw new RetryBatch(error)
        await db.query('rollback to savepoint w')
        // Rolled back: so are the changes it would have published.
        collected.length = mark
        results.push({ ok: false, error })
      }
    }
    await db.query('commit')
    return results
  }

  async function runBatch(works: Pending[]): Promise<void> {
    let db: pg.PoolClient | undefined
    try {
      db = await pool.connect()
      for (let round = 0; ; round++) {
        const collected: BalanceChange[] = []
        try {
          const results = await attempt(db, works, collected)
          options.onCommit?.(works.length)
          publish(collected)
          results.forEach((r, i) => (r.ok ? works[i].resolve(r.value) : works[i].reject(r.error)))
          return
        } catch (error) {
          await db.query('rollback').catch(() => undefined)
          const retryable = error instanceof RetryBatch || isRetryable(error)
          if (!retryable || round >= retries) throw error instanceof RetryBatch ? error.cause : error
          options.onRetry?.(error instanceof RetryBatch ? error.cause : error)
        }
      }
    } catch (error) {
      // The transaction failed as a whole (connection lost, retries spent): nothing committed.
      for (const p of works) p.reject(error)
    } finally {
      db?.release()
    }
  }

  function publish(changes: BalanceChange[]): void {
    for (const change of changes) {
      try {
        events.emit('change', change)
      } catch {
        // Committed already: a listener's failure must not become its caller's error.
      }
    }
  }

  function flush(): void {
    scheduled = false
    if (running) return
    running = (async () => {
      while (pending.length > 0) {
        const taken = pending.slice(0, maxBatch)
        pending = pending.slice(taken.length)
        await runBatch(taken)
      }
    })().finally(() => {
      running = undefined
      // A write queued between the loop's last check and here would otherwise wait forever.
      if (pending.length > 0 && !scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    })
  }

  return {
    run<T>(work: PgWrite<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ work: work as PgWrite<unknown>, resolve: resolve as (value: unknown) => void, reject })
        if (!scheduled && !running) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
    async drain() {
      while (running || pending.length > 0 || scheduled) {
        if (!running && !scheduled) flush()
        await (running ?? new Promise((resolve) => setImmediate(resolve)))
      }
    },
  }
}
