/**
 * Pays workers' owners for observed uptime: takes each worker's accrued milliseconds from
 * the tracker and credits them, for all workers at once, in one store operation (an
 * `uptime` entry per worker, minting the reward). Runs every `uptimeFlushSeconds` and when
 * a worker leaves. What could not be paid (a fraction of a milli-kudo, a failed write) is
 * given back to the timeline, so no observed minute is lost or paid twice.
 *
 * With a journal (cluster/uptime-journal.ts), every heartbeat also writes down what each
 * worker has accrued since its last payment, under the ref its next payment will use
 * (`<worker>:<run>:<n>`, n counting this run's payments to the worker). A process killed
 * without a goodbye leaves that journal behind; the next flush of any live process pays it,
 * and the ledger refuses a ref the dead process had already paid.
 */
import { randomUUID } from 'node:crypto'
import type { UptimeJournal } from '../cluster/uptime-journal.js'
import type { KudosConfig } from '../config.js'
import type { ModelRegistry } from '../economy/models.js'
import { DuplicateEntryError } from '../economy/posting-rules.js'
import { uptimeRewardPerPeriod } from '../economy/rewards.js'
import type { UptimeTracker } from '../economy/uptime.js'
import type { UptimeCredit, WorkerStore } from '../store/ports.js'
import type { WorkerState } from './worker-link.js'

export interface UptimePayer {
  /** Pays what the given workers accrued. Resolves with the milli-kudos minted. */
  flush(workers: Iterable<WorkerState>): Promise<number>
  /** Writes what every worker accrued and has not been paid to the journal (no journal: nothing). */
  checkpoint(): Promise<void>
  /** Pays the journals of processes that died; resolves with the milli-kudos minted. */
  adoptOrphans(): Promise<number>
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
  /** Where unpaid uptime survives this process; with it, `checkpointMs` says how often it is written. */
  journal?: UptimeJournal
  checkpointMs?: number
}

export function createUptimePayer(deps: UptimePayerDeps): UptimePayer {
  const { tracker, models, kudos, journal } = deps
  const periodMs = kudos.uptimePeriodSeconds * 1000
  // Refs name this process's run and count its payments per worker, so two processes (or
  // two runs) never collide, and the journal can name a payment before it is made.
  const run = randomUUID().slice(0, 8)
  const paidCount = new Map<number, number>()
  const nextRef = (workerId: number) => `${workerId}:${run}:${(paidCount.get(workerId) ?? 0) + 1}`

  /** The credit `ms` of accrual earns a worker, and the ms it pays for (a fraction of a milli-kudo stays). */
  function creditFor(worker: WorkerState, ms: number): UptimeCredit | undefined {
    const info = worker.info
    if (!info || ms <= 0) return undefined
    const perPeriod = uptimeRewardPerPeriod(info.maxContextLength, models.sizeOf(info.modelList[0]), kudos.uptimeBase)
    const milli = Math.floor((perPeriod * 1000 * ms) / periodMs)
    if (milli <= 0) return undefined
    return { workerId: info.id, ownerId: worker.link.principal.userId, ms: (milli * periodMs) / (perPeriod * 1000), milli, ref: nextRef(info.id) }
  }

  async function flush(list: Iterable<WorkerState>): Promise<number> {
    const due: Array<{ name: string; credit: UptimeCredit }> = []
    for (const worker of list) {
      const info = worker.info
      if (!info) continue
      const ms = tracker.take(info.name)
      if (ms <= 0) continue
      const credit = creditFor(worker, ms)
      if (!credit) {
        tracker.giveBack(info.name, ms)
        continue
      }
      // Keep the fraction of a milli-kudo that was not paid.
      if (ms - credit.ms > 0) tracker.giveBack(info.name, ms - credit.ms)
      due.push({ name: info.name, credit })
    }
    if (due.length === 0) return 0
    try {
      await deps.workers.creditUptime(due.map((d) => d.credit), Date.now())
    } catch (error) {
      if (!(error instanceof DuplicateEntryError)) {
        for (const { name, credit } of due) tracker.giveBack(name, credit.ms)
        throw error
      }
      // Another process took this one for dead and paid a journaled ref: one at a time, so
      // the others are still paid; the journaled amount stands for the duplicate.
      return payOneByOne(due)
    }
    for (const { credit } of due) paidCount.set(credit.workerId, (paidCount.get(credit.workerId) ?? 0) + 1)
    return due.reduce((sum, d) => sum + d.credit.milli, 0)
  }

  async function payOneByOne(due: Array<{ name: string; credit: UptimeCredit }>): Promise<number> {
    let minted = 0
    for (const { name, credit } of due) {
      try {
        await deps.workers.creditUptime([credit], Date.now())
        minted += credit.milli
      } catch (error) {
        if (!(error instanceof DuplicateEntryError)) {
          tracker.giveBack(name, credit.ms)
          deps.log(error)
          continue
        }
      }
      paidCount.set(credit.workerId, (paidCount.get(credit.workerId) ?? 0) + 1)
    }
    return minted
  }

  async function checkpoint(): Promise<void> {
    if (!journal) return
    const credits: UptimeCredit[] = []
    for (const worker of deps.online()) {
      const credit = worker.info && creditFor(worker, tracker.accrued(worker.info.name))
      if (credit) credits.push(credit)
    }
    await journal.checkpoint(credits)
  }

  async function adoptOrphans(): Promise<number> {
    if (!journal) return 0
    let minted = 0
    for (const { process, credits } of await journal.orphans()) {
      for (const credit of credits) {
        try {
          await deps.workers.creditUptime([credit], Date.now())
          minted += credit.milli
        } catch (error) {
          // Paid by the dead process before it died: nothing owed. Anything else: try again next time.
          if (!(error instanceof DuplicateEntryError)) throw error
        }
      }
      await journal.forget(process)
    }
    return minted
  }

  const timer = setInterval(() => {
    void flush(deps.online()).catch(deps.log)
    void adoptOrphans().catch(deps.log)
  }, kudos.uptimeFlushSeconds * 1000)
  timer.unref()
  const checkpointTimer = journal ? setInterval(() => void checkpoint().catch(deps.log), deps.checkpointMs ?? 15_000) : undefined
  checkpointTimer?.unref()

  return {
    flush,
    checkpoint,
    adoptOrphans,
    close() {
      clearInterval(timer)
      clearInterval(checkpointTimer)
    },
  }
}
