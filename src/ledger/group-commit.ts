/**
 * Group commit: writes that arrive in the same event-loop turn share one SQLite transaction,
 * so one commit (and, with synchronous=FULL, one fsync) serves them all. Each caller gets a
 * promise that settles only after the commit: nothing is acknowledged before it is on disk.
 * Each piece runs in its own savepoint, so one that throws fails alone.
 */
import type { EntryInput, Ledger } from './ledger.js'

type Work<T> = Parameters<Ledger['runEach']>[0][number] extends (...args: infer A) => unknown ? (...args: A) => T : never

interface Pending {
  work: Work<unknown>
  resolve(value: unknown): void
  reject(error: unknown): void
}

export interface GroupCommit {
  /** Queues `work` for the next batch; resolves with its result once the batch has committed. */
  run<T>(work: Work<T>): Promise<T>
}

export function createGroupCommit(ledger: Pick<Ledger, 'runEach'>, options: { maxBatch?: number } = {}): GroupCommit {
  const maxBatch = options.maxBatch ?? 500
  let pending: Pending[] = []
  let scheduled = false

  function flush(): void {
    scheduled = false
    const batch = pending
    pending = []
    if (batch.length === 0) return
    let results
    try {
      results = ledger.runEach(batch.map((p) => p.work))
    } catch (error) {
      // The transaction itself failed (disk full, database locked too long): nothing committed.
      for (const p of batch) p.reject(error)
      return
    }
    results.forEach((result, i) => (result.ok ? batch[i].resolve(result.value) : batch[i].reject(result.error)))
  }

  return {
    run<T>(work: Work<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ work, resolve: resolve as (value: unknown) => void, reject })
        if (pending.length >= maxBatch) flush()
        else if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
  }
}

export type { EntryInput }
