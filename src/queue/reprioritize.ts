/**
 * Keeps waiting requests at their owner's current kudos priority. On every balance change
 * the ledger reports, the user's waiting requests (from our own per-user index, so the cost
 * is proportional to that user's waiting requests, not to the queue) move to the new
 * priority bucket, in submission order, so FIFO among them survives. Bursts coalesce: one
 * pass per user at a time, always with the latest balance, and nothing moves while the
 * bucket stays the same.
 *
 * With the optional ageing bonus, each request's priority also counts the time it waited,
 * and a sweep every 10 s moves the requests whose bonus grew.
 */
import type { Redis } from 'ioredis'
import { ageingBonusMilli, priorityForBalance } from '../economy/priority.js'
import type { JobQueue } from './job-queue.js'
import type { Keys } from './keys.js'

export interface ReprioritizerOptions {
  redis: Redis
  keys: Keys
  jobQueue: JobQueue
  /** Current balance of a user, milli-kudos. */
  balanceOf(userId: number): number
  /** Users with waiting requests (for the ageing sweep). */
  usersWaiting(): number[]
  ageingBonusPer10s: number
  log(error: unknown): void
  now?: () => number
}

export interface Reprioritizer {
  /** A user's balance changed. */
  balanceChanged(userId: number): void
  /** Resolves when no pass is running or pending (for tests and benchmarks). */
  idle(): Promise<void>
  /** One ageing pass over every user with waiting requests. */
  ageAll(): Promise<void>
  close(): void
}

export function createReprioritizer(options: ReprioritizerOptions): Reprioritizer {
  const { redis, keys, jobQueue } = options
  const now = options.now ?? Date.now
  const pending = new Set<number>()
  const running = new Map<number, Promise<void>>()
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
    const balance = options.balanceOf(userId)
    const base = priorityForBalance(balance)
    const [members, previous] = await Promise.all([
      redis.zrange(keys.waiting(userId), '0', '-1', 'WITHSCORES'),
      redis.get(keys.bucket(userId)),
    ])
    if (members.length === 0) {
      applied.set(userId, base)
      return
    }
    if (!ageing && !force && previous === String(base)) {
      applied.set(userId, base)
      return
    }
    const moves: Array<Promise<boolean>> = [redis.set(keys.bucket(userId), String(base)).then(() => true)]
    const at = now()
    for (let i = 0; i < members.length; i += 2) {
      const [queue, request] = members[i].split('|')
      const priority = ageing ? priorityForBalance(balance + ageingBonusMilli(at - Number(members[i + 1]), options.ageingBonusPer10s)) : base
      moves.push(jobQueue.changePriority(queue, request, priority))
    }
    await Promise.all(moves)
    applied.set(userId, base)
  }

  function run(userId: number, force = false): Promise<void> {
    const current = running.get(userId)
    if (current) {
      pending.add(userId)
      return current
    }
    const work = (async () => {
      try {
        await pass(userId, force)
        while (pending.delete(userId)) await pass(userId, force)
      } catch (error) {
        options.log(error)
      } finally {
        running.delete(userId)
      }
    })()
    running.set(userId, work)
    return work
  }

  async function ageAll(): Promise<void> {
    await Promise.all(options.usersWaiting().map((userId) => run(userId, true)))
  }

  return {
    balanceChanged(userId) {
      if (!ageing && !running.has(userId) && applied.get(userId) === priorityForBalance(options.balanceOf(userId))) return
      void run(userId)
    },
    async idle() {
      while (running.size > 0) await Promise.all([...running.values()])
    },
    ageAll,
    close() {
      clearInterval(ageTimer)
      clearInterval(forget)
    },
  }
}
