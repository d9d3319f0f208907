/**
 * Uptime accrual. Workers earn for time online that the server itself observed: each pong
 * (an answer to our ping) credits the time since the worker's previous pong, on the
 * server's monotonic clock. A gap longer than two heartbeats was silence and earns nothing.
 * Accrual is kept per worker *name*, so a reconnect continues one timeline, and a flood of
 * pongs can never credit more than the wall-clock span between them. Accrued time is
 * turned into kudos and posted to the ledger in batches (`flush`).
 */

export interface UptimeClock {
  now(): number
}

export const monotonic: UptimeClock = { now: () => performance.now() }

interface Timeline {
  /** Monotonic ms of the last pong, or null before the first. */
  lastPong: number | null
  /** Observed online ms not yet paid. */
  accruedMs: number
}

export class UptimeTracker {
  private readonly timelines = new Map<string, Timeline>()

  constructor(private readonly heartbeatMs: number, private readonly clock: UptimeClock = monotonic) {}

  /** Records a pong from a worker; returns the ms it credited. */
  pong(worker: string): number {
    const at = this.clock.now()
    let timeline = this.timelines.get(worker)
    if (!timeline) this.timelines.set(worker, (timeline = { lastPong: null, accruedMs: 0 }))
    let credited = 0
    if (timeline.lastPong !== null) {
      const gap = at - timeline.lastPong
      if (gap > 0 && gap <= 2 * this.heartbeatMs) credited = gap
    }
    timeline.lastPong = Math.max(at, timeline.lastPong ?? at)
    timeline.accruedMs += credited
    return credited
  }

  /** Takes a worker's accrued ms (to pay them); what is taken is not paid again. */
  take(worker: string): number {
    const timeline = this.timelines.get(worker)
    if (!timeline) return 0
    const ms = timeline.accruedMs
    timeline.accruedMs = 0
    return ms
  }

  /** Gives back ms that could not be paid (a failed flush). */
  giveBack(worker: string, ms: number): void {
    const timeline = this.timelines.get(worker)
    if (timeline) timeline.accruedMs += ms
  }

  /** Forgets a worker that left; its accrued time must have been taken first. */
  forget(worker: string): void {
    this.timelines.delete(worker)
  }

  accrued(worker: string): number {
    return this.timelines.get(worker)?.accruedMs ?? 0
  }
}
