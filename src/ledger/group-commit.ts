/**
 * @deprecated Group commit now lives in the store (src/store/sqlite/commit.ts), where every
 * write goes through it. This copy only serves src/gateway/pipeline.ts until it moves onto
 * the store ports; it batches the old `(tx, post)` work onto the store's committer.
 */
import type { LegacyTransactions, LegacyWork } from '../store/sqlite/legacy.js'

interface Pending {
  work: LegacyWork<unknown>
  resolve(value: unknown): void
  reject(error: unknown): void
}

/** @deprecated See the module comment. */
export interface GroupCommit {
  run<T>(work: LegacyWork<T>): Promise<T>
}

/** @deprecated See the module comment. */
export function createGroupCommit(ledger: Pick<LegacyTransactions, 'runEach'>, options: { maxBatch?: number } = {}): GroupCommit {
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
      for (const p of batch) p.reject(error)
      return
    }
    results.forEach((result, i) => (result.ok ? batch[i].resolve(result.value) : batch[i].reject(result.error)))
  }

  return {
    run<T>(work: LegacyWork<T>): Promise<T> {
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
