/**
 * Group commit, the SQLite store's commit strategy: every write the store makes arriving in
 * one event-loop turn joins one immediate transaction, so one commit (and, with
 * synchronous=FULL, one fsync) serves them all. Each write runs in its own savepoint: one
 * that throws is rolled back alone, with the postings it made, and only its caller sees the
 * error. Promises settle after the commit, so nothing is acknowledged before it is on disk,
 * and balance changes are emitted on the store's events only then.
 *
 * The work itself is synchronous: better-sqlite3 transactions cannot span an `await`, and a
 * write that awaited inside one would let other writes interleave with it.
 */
import type Database from 'better-sqlite3'
import type { EventEmitter } from 'node:events'
import type { BalanceChange, EntryInput } from '../../economy/posting-rules.js'
import type { StoreEvents } from '../ports.js'

/** What a write is handed inside the transaction. */
export interface WriteScope {
  /** Appends a ledger entry (checked against the posting rules) and returns its id. */
  post(entry: EntryInput): number
}

/** A write: synchronous, run inside the batch's transaction, in its own savepoint. */
export type Write<T> = (scope: WriteScope) => T

export type WriteResult<T> = { ok: true; value: T } | { ok: false; error: unknown }

export interface Committer {
  /** Queues `work` for this turn's batch; resolves with its result once the batch has committed. */
  run<T>(work: Write<T>): Promise<T>
  /**
   * Runs the given writes now, in one immediate transaction, each in its own savepoint, and
   * emits their balance changes after the commit. `run` batches through this.
   */
  runEach<T>(works: ReadonlyArray<Write<T>>): Array<WriteResult<T>>
}

interface Pending {
  work: Write<unknown>
  resolve(value: unknown): void
  reject(error: unknown): void
}

export interface CommitterOptions {
  /** Flush early once this many writes wait (bounds one transaction's length). */
  maxBatch?: number
  /** Called after each committed batch with its number of writes (metrics; tests count commits). */
  onCommit?: (writes: number) => void
}

/** The group committer on `sqlite`: `post` appends ledger entries, `events` gets their changes after each commit. */
/** Appends one checked entry with its postings and balance updates; returns the changes to publish after commit. */
export type Poster = (entry: EntryInput) => { entryId: number; changes: BalanceChange[] }

export function createCommitter(sqlite: Database.Database, post: Poster, events: EventEmitter<StoreEvents>, options: CommitterOptions = {}): Committer {
  const maxBatch = options.maxBatch ?? 500
  let pending: Pending[] = []
  let scheduled = false

  // A nested better-sqlite3 transaction function runs as a savepoint of the outer one.
  const savepoint = sqlite.transaction((work: Write<unknown>, scope: WriteScope) => work(scope))
  const batch = sqlite.transaction((works: ReadonlyArray<Write<unknown>>, collected: BalanceChange[]) => works.map((work): WriteResult<unknown> => {
    const mark = collected.length
    const scope: WriteScope = {
      post(entry) {
        const { entryId, changes } = post(entry)
        collected.push(...changes)
        return entryId
      },
    }
    try {
      return { ok: true, value: savepoint(work, scope) }
    } catch (error) {
      // Its savepoint was rolled back: so are the changes it would have published.
      collected.length = mark
      return { ok: false, error }
    }
  }))

  function publish(changes: BalanceChange[]): void {
    for (const change of changes) {
      try {
        events.emit('change', change)
      } catch {
        // The write has committed: a listener's failure must not turn it into an error for its caller.
      }
    }
  }

  function runEach<T>(works: ReadonlyArray<Write<T>>): Array<WriteResult<T>> {
    const collected: BalanceChange[] = []
    const results = batch.immediate(works, collected) as Array<WriteResult<T>>
    options.onCommit?.(works.length)
    publish(collected)
    return results
  }

  function flush(): void {
    scheduled = false
    const taken = pending
    pending = []
    if (taken.length === 0) return
    let results: Array<WriteResult<unknown>>
    try {
      results = runEach(taken.map((p) => p.work))
    } catch (error) {
      // The transaction itself failed (disk full, database locked too long): nothing committed.
      for (const p of taken) p.reject(error)
      return
    }
    results.forEach((result, i) => (result.ok ? taken[i].resolve(result.value) : taken[i].reject(result.error)))
  }

  return {
    run<T>(work: Write<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ work, resolve: resolve as (value: unknown) => void, reject })
        if (pending.length >= maxBatch) flush()
        else if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
    runEach,
  }
}
