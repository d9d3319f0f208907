/**
 * The jobs this process holds, and the renewal of their locks. BullMQ does not renew the
 * locks of jobs fetched by hand: a process that stops renewing (it died, or stalled for
 * longer than the lock) loses its jobs to the stalled check, which is what brings a dead
 * process's jobs back.
 */
import type { Worker } from 'bullmq'
import type { ClaimedJob, JobData } from './job-types.js'

export class HeldJobs {
  private readonly byId = new Map<string, ClaimedJob>()
  /**
   * Claims on their way: BullMQ has made the job active (no longer waiting, so it cannot be
   * removed) but it is not held here yet. A cancel in that gap waits for them to land.
   */
  private readonly inFlight = new Set<Promise<unknown>>()

  /** Tracks a claim until it resolves, and hands on its result. */
  async claiming<T>(fetch: Promise<T>): Promise<T> {
    this.inFlight.add(fetch)
    try {
      return await fetch
    } finally {
      this.inFlight.delete(fetch)
    }
  }

  /** Resolves once every claim in flight now has come back (and what it took, if anything, is held). */
  async claimsSettled(): Promise<void> {
    if (this.inFlight.size) await Promise.allSettled([...this.inFlight])
  }

  /** Starts renewing a claim's lock. */
  hold(claimed: ClaimedJob): void {
    this.byId.set(claimed.job.id!, claimed)
  }

  /**
   * Stops renewing this claim's lock. Only this claim's: when a lock was lost (Redis away, or
   * this process stalled, for longer than the lock) the stalled check may have handed the
   * same job to a newer claim, and the stale claim ending must not stop the live one's
   * renewals (its lock would expire and a third worker would get the job).
   */
  release(claimed: ClaimedJob): void {
    if (this.byId.get(claimed.job.id!) === claimed) this.byId.delete(claimed.job.id!)
  }

  /** True while this process holds the request's job. */
  has(request: string): boolean {
    return this.byId.has(request)
  }

  /** Queues with a job held here (such a queue must stay open). */
  queues(): Set<string> {
    return new Set([...this.byId.values()].map((claimed) => claimed.queue))
  }

  /** Renews every held lock for `lockMs`, one call per queue, through that queue's fetcher. */
  async renew(fetcherOf: (queue: string) => Worker<JobData> | undefined, lockMs: number): Promise<void> {
    if (this.byId.size === 0) return
    const byQueue = new Map<string, ClaimedJob[]>()
    for (const claimed of this.byId.values()) {
      const list = byQueue.get(claimed.queue) ?? []
      list.push(claimed)
      byQueue.set(claimed.queue, list)
    }
    await Promise.all([...byQueue].map(async ([queue, jobs]) => {
      const fetcher = fetcherOf(queue)
      if (!fetcher) return
      try {
        await fetcher.extendJobLocks(jobs.map((c) => c.job.id!), jobs.map((c) => c.token), lockMs)
      } catch { /* Redis away: the jobs may stall and come back; settlement stays exactly-once */ }
    }))
  }
}
