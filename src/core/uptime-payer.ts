/**
 * Pays workers' owners for observed uptime: takes each worker's accrued milliseconds from
 * the tracker and credits them, for all workers at once, in one store operation (an
 * `uptime` entry per worker, minting the reward). Runs every `uptimeFlushSeconds` and when
 * a worker leaves. What could not be paid (a fraction of a milli-kudo, a failed write) is
 * given back to the timeline, so no observed minute is lost or paid twice.
 */
import { randomUUID } from 'node:crypto'
import type { KudosConfig } from '../config.js'
import type { ModelRegistry } from '../economy/models.js'
import { uptimeRewardPerPeriod } from '../economy/rewards.js'
import type { UptimeTracker } from '../economy/uptime.js'
import type { UptimeCredit, WorkerStore } from '../store/ports.js'
import type { WorkerState } from './worker-link.js'

export interface UptimePayer {
  /** Pays what the given workers accrued. Resolves with the milli-kudos minted. */
  flush(workers: Iterable<WorkerState>): Promise<number>
  close(): void
}

export interface UptimePayerDeps {
  workers: WorkerStore
  models: ModelRegistry
  tracker: UptimeTracker
  kudos: KudosConfig
  /** Every worker of this process, for the periodic flush. */
  online(): Iterable<WorkerState>
  log(error: unknown): void
}

export function createUptimePayer(deps: UptimePayerDeps): UptimePayer {
  const { tracker, models, kudos } = deps
  const periodMs = kudos.uptimePeriodSeconds * 1000
  // Batch refs name this process's run, so two processes (or two runs) never collide.
  const run = randomUUID().slice(0, 8)
  let batch = 0

  async function flush(list: Iterable<WorkerState>): Promise<number> {
    const due: Array<{ name: string; credit: UptimeCredit }> = []
    const stamp = `${Date.now().toString(36)}-${run}-${++batch}`
    for (const worker of list) {
      const info = worker.info
      if (!info) continue
      const ms = tracker.take(info.name)
      if (ms <= 0) continue
      const perPeriod = uptimeRewardPerPeriod(info.maxContextLength, models.sizeOf(info.modelList[0]), kudos.uptimeBase)
      const milli = Math.floor((perPeriod * 1000 * ms) / periodMs)
      if (milli <= 0) {
        tracker.giveBack(info.name, ms)
        continue
      }
      // Keep the fraction of a milli-kudo that was not paid.
      const paidMs = (milli * periodMs) / (perPeriod * 1000)
      if (ms - paidMs > 0) tracker.giveBack(info.name, ms - paidMs)
      due.push({ name: info.name, credit: { workerId: info.id, ownerId: worker.link.principal.userId, ms: paidMs, milli, ref: `${info.id}:${stamp}` } })
    }
    if (due.length === 0) return 0
    try {
      await deps.workers.creditUptime(due.map((d) => d.credit), Date.now())
    } catch (error) {
      for (const { name, credit } of due) tracker.giveBack(name, credit.ms)
      throw error
    }
    return due.reduce((sum, d) => sum + d.credit.milli, 0)
  }

  const timer = setInterval(() => void flush(deps.online()).catch(deps.log), kudos.uptimeFlushSeconds * 1000)
  timer.unref()

  return { flush, close: () => clearInterval(timer) }
}
