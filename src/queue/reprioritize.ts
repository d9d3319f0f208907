/**
 * Keeps waiting requests at their owner's current kudos priority. On every balance change
 * the ledger reports, the user's waiting requests (from our own per-user index, so the cost
 * is proportional to that user's waiting requests, not to the queue) move to the new
 * priority bucket, in submission order, so FIFO among them survives. Bursts coalesce: one
 * pass per user at a time, always with the latest balance, and nothing moves while the
 * bucket stays the same.
 *
 * The ledger's change event carries the new balance, so a change that stays inside the
 * bucket (every payment, every uptime credit, mostly) is answered here without touching
 * storage or Redis; a pass reads the balance again, since it may run after later changes.
 *
 * With the optional ageing bonus, each request's priority also counts the time it waited,
 * and a sweep every 10 s moves the requests whose bonus grew.
 */
import { ageingBonusMilli, priorityForBalance } from '../economy/priority.js'
import { Coalescer } from '../util/coalescer.js'
import type { JobQueue } from './job-queue.js'

/** A value now, or later: the storage layer may answer either way. */
export type Awaitable<T> = T | Promise<T>

export interface ReprioritizerOptions {
  /** The queue whose jobs move; its waiting index says which jobs are a user's. */
  jobQueue: JobQueue
  /** Current balance of a user, milli-kudos. */
  balanceOf(userId: number): Awaitable<number>
  /** Users with waiting requests (for the ageing sweep). */
  usersWaiting(): Awaitable<number[]>
  ageingBonusPer10s: number
  log(error: unknown): void
  now?: () => number
}

export interface Reprioritizer {
  /**
   * A user's balance changed to `balance` (milli-kudos, from the ledger's change event).
   * Without `balance` it is read with `balanceOf`; when that is asynchronous, a pass runs.
   */
  balanceChanged(userId: number, balance?: number): void
  /** Resolves when no pass is running or pending (for tests and benchmarks). */
  idle(): Promise<void>
  /** One ageing pass over every user with waiting requests. */
  ageAll(): Promise<void>
  close(): void
}

function isPromise<T>(value: Awaitable<T>): value is Promise<T> {
  return typeof (value as Promise<T>)?.then === 'function'
}

export function createReprioritizer(options: ReprioritizerOptions): Reprioritizer {
  const { jobQueue } = options
  const index = jobQueue.waiting
  const now = options.now ?? Date.now
  const passes = new Coalescer<number>({ onError: options.log })
  /**
   * The bucket this process last put each user's requests in. Most balance changes (every
   * payment, every uptime credit) stay inside a bucket: those are answered here, without a
   * Redis round trip, so dispatch never waits for them. Forgotten every few seconds, so a
   * move made by another broker process is seen again soon.
   */
  const applied = new Map<number, number>()
  const forget = setInterval(() => applied.clear(), 2000)
  forget.unref()
  const ageing = options.ageingBonusPer10s > 0
  let ageTimer: NodeJS.Timeout | undefined
  if (ageing) {
    ageTimer = setInterval(() => void ageAll().catch(options.log), 10_000)
    ageTimer.unref()
  }

  async function pass(userId: number, force: boolean): Promise<void> {
    // Read when the pass runs, not when it was asked for: a coalesced burst ends at the last balance.
    const balance = await options.balanceOf(userId)
    const base = priorityForBalance(balance)
    const { entries, bucket } = await index.ofUser(userId)
    if (entries.length === 0) {
      applied.set(userId, base)
      return
    }
    if (!ageing && !force && bucket === base) {
      applied.set(userId, base)
      return
    }
    const moves: Array<Promise<unknown>> = [index.setBucket(userId, base)]
    const at = now()
    // Issued in submission order on one connection, so they land in that order and FIFO survives.
    for (const { queue, request, submittedAt } of entries) {
      const priority = ageing ? priorityForBalance(balance + ageingBonusMilli(at - submittedAt, options.ageingBonusPer10s)) : base
      moves.push(jobQueue.changePriority(queue, request, priority))
    }
    await Promise.all(moves)
    applied.set(userId, base)
  }

  function run(userId: number, force = false): Promise<void> {
    return passes.run(userId, () => pass(userId, force))
  }

  async function ageAll(): Promise<void> {
    const users = await options.usersWaiting()
    await Promise.all(users.map((userId) => run(userId, true)))
  }

  /** True when nothing can have to move: no pass pending and the bucket is the one applied. */
  function unchanged(userId: number, balance: number): boolean {
    return !ageing && !passes.isRunning(userId) && applied.get(userId) === priorityForBalance(balance)
  }

  return {
    balanceChanged(userId, balance) {
      const known = balance ?? options.balanceOf(userId)
      // A balance still to be read goes straight to a pass, so `idle()` covers it from now on.
      if (!isPromise(known) && unchanged(userId, known)) return
      void run(userId)
    },
    idle: () => passes.idle(),
    ageAll,
    close() {
      clearInterval(ageTimer)
      clearInterval(forget)
    },
  }
}
