/**
 * Pays workers' owners for observed uptime: takes each worker's accrued milliseconds from
 * the tracker and posts them, for all workers at once, in one ledger transaction
 * (an `uptime` entry per worker, minting the reward). Runs every `uptimeFlushSeconds` and
 * when a worker leaves.
 */
import { eq, sql } from 'drizzle-orm'
import { workers } from '../db/schema.js'
import type { ModelRegistry } from '../economy/models.js'
import { uptimeRewardPerPeriod } from '../economy/rewards.js'
import type { UptimeTracker } from '../economy/uptime.js'
import type { Services } from '../services.js'
import type { WorkerSession } from './worker-session.js'

export interface UptimePayer {
  /** Pays what the given workers accrued. Returns milli-kudos minted. */
  flush(sessions: Iterable<WorkerSession>): number
  close(): void
}

export function createUptimePayer(services: Services, models: ModelRegistry, tracker: UptimeTracker, sessions: () => Iterable<WorkerSession>): UptimePayer {
  const { config, ledger } = services
  const periodMs = config.kudos.uptimePeriodSeconds * 1000
  let batch = 0

  function flush(list: Iterable<WorkerSession>): number {
    const due: Array<{ session: WorkerSession; ms: number; milli: number }> = []
    for (const session of list) {
      const info = session.info
      if (!info) continue
      const ms = tracker.take(info.name)
      if (ms <= 0) continue
      const perPeriod = uptimeRewardPerPeriod(info.maxContextLength, models.sizeOf(info.modelList[0]), config.kudos.uptimeBase)
      const milli = Math.floor((perPeriod * 1000 * ms) / periodMs)
      if (milli <= 0) {
        tracker.giveBack(info.name, ms)
        continue
      }
      // Keep the fraction of a milli-kudo that was not paid.
      const paidMs = (milli * periodMs) / (perPeriod * 1000)
      if (ms - paidMs > 0) tracker.giveBack(info.name, ms - paidMs)
      due.push({ session, ms: paidMs, milli })
    }
    if (due.length === 0) return 0
    const stamp = `${Date.now().toString(36)}-${process.pid}-${++batch}`
    try {
      ledger.run((tx, post) => {
        for (const { session, ms, milli } of due) {
          const info = session.info!
          post({
            kind: 'uptime', ref: `${info.id}:${stamp}`, memo: `${Math.round(ms)} ms online`,
            postings: [{ userId: session.principal.userId, amount: milli, category: 'uptime' }],
          })
          tx.update(workers).set({ uptimeMs: sql`${workers.uptimeMs} + ${Math.round(ms)}`, earned: sql`${workers.earned} + ${milli}`, lastSeenAt: Date.now() })
            .where(eq(workers.id, info.id)).run()
        }
      })
    } catch (error) {
      for (const { session, ms } of due) tracker.giveBack(session.info!.name, ms)
      throw error
    }
    return due.reduce((sum, d) => sum + d.milli, 0)
  }

  const timer = setInterval(() => {
    try {
      flush(sessions())
    } catch (error) {
      services.log.warn({ err: error }, 'uptime flush failed; will retry')
    }
  }, config.kudos.uptimeFlushSeconds * 1000)
  timer.unref()

  return { flush, close: () => clearInterval(timer) }
}
