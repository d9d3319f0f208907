/**
 * A worker that polls (the KoboldAI Horde bridge, AI-Horde-Worker's scribe, KoboldCpp's
 * built-in worker) as a `WorkerLink` of the core. The core pushes and a bridge pulls; the
 * link joins the two: each pop waiting is one unit of the link's `capacity`, so dispatch
 * hands this worker a job only while a pop of its is waiting, and `offer` answers the oldest
 * waiting pop at once. A job handed over is leased for the TTL: no submit by then, and it
 * goes back to its queue as a failed attempt (what a worker socket's `fail` does). A submit
 * relays the whole text as one chunk and `done`, then waits for the settlement's kudos.
 */
import { randomUUID } from 'node:crypto'
import type { Principal } from '../accounts/accounts.js'
import type { Workforce } from '../core/workforce.js'
import type { JobOffer, PausedNotice, Ready, SettledNotice, WorkerLink, WorkerState } from '../core/worker-link.js'
import { BrokerError } from '../errors.js'

/** A job as a pop answers it. */
export interface Handed {
  /** The job's own id (a UUID per attempt, unlike the request id). */
  jobId: string
  offer: JobOffer
}

/** How a job of this link ended, for the answer to a later submit of the same id. */
export type Ended = { kind: 'submitted' } | { kind: 'stopped' } | { kind: 'expired' }

/** What a polling worker said at check-in, as this link serves it. */
export interface CheckIn {
  name: string
  models: string[]
  maxLength: number
  maxContextLength: number
  threads: number
  /** Usernames (already resolved from `alias#id`) served first after the owner. */
  priorityUsernames: string[]
  nsfw: boolean
  bridgeAgent: string
  softprompts: string[]
}

export interface PollingLinkOptions {
  principal: Principal
  checkIn: CheckIn
  workforce: Workforce
  jobTtlMs: number
  idleMs: number
  /** A job id was handed out (the registry indexes job ids for submits). */
  leased(jobId: string, link: PollingLink): void
  /** A job id's lease ended (submitted, stopped, expired). */
  ended(jobId: string, how: Ended): void
  /** The link closed (idle, replaced, re-configured). */
  closedDown(link: PollingLink): void
  log(error: unknown): void
}

interface Waiter {
  resolve(job: Handed | null): void
  /** True once the HTTP request holding this pop has gone. */
  gone(): boolean
}

interface Lease {
  jobId: string
  offer: JobOffer
  timer: NodeJS.Timeout
}

/** How long a submit waits for its settlement before answering a reward of 0. */
const SETTLE_WAIT_MS = 30_000

export class PollingLink implements WorkerLink {
  readonly id = randomUUID()
  readonly principal: Principal
  readonly state: WorkerState
  readonly checkIn: CheckIn
  /** Set by `ready`: the worker row. */
  workerId: number | null = null
  unknownPriorityUsers: string[] = []
  lastPause: PausedNotice | null = null
  private isClosed = false
  private readonly waiters: Waiter[] = []
  /** Offers that found no pop waiting (a race with a pop that left): the next pop takes them. */
  private readonly unclaimed: Handed[] = []
  private readonly leases = new Map<string, Lease>()
  /** Lease by the core's own job id (the core's name for the attempt; the v2 id is this link's). */
  private readonly byCoreJob = new Map<string, string>()
  private readonly settling = new Map<string, (kudos: number) => void>()
  private idleTimer: NodeJS.Timeout | undefined

  constructor(private readonly options: PollingLinkOptions) {
    this.principal = options.principal
    this.checkIn = options.checkIn
    this.state = options.workforce.connect(this)
    this.touch()
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** Pops waiting now, minus those whose request has gone. */
  get capacity(): number {
    let live = 0
    for (const waiter of this.waiters) if (!waiter.gone()) live++
    return live
  }

  /** Jobs leased and not yet submitted. */
  get leased(): number {
    return this.leases.size
  }

  // --- the link: what the core pushes -------------------------------------------------------

  ready(ready: Ready): void {
    this.workerId = ready.worker_id
    this.unknownPriorityUsers = ready.unknown_priority_users
  }

  offer(job: JobOffer): void {
    const jobId = randomUUID()
    const timer = setTimeout(() => this.expire(jobId), this.options.jobTtlMs)
    timer.unref()
    this.leases.set(jobId, { jobId, offer: job, timer })
    this.byCoreJob.set(job.job, jobId)
    this.options.leased(jobId, this)
    const handed = { jobId, offer: job }
    while (this.waiters.length) {
      const waiter = this.waiters.shift()!
      if (waiter.gone()) {
        waiter.resolve(null)
        continue
      }
      waiter.resolve(handed)
      return
    }
    this.unclaimed.push(handed)
  }

  stop(coreJob: string): void {
    // The requester cancelled: the settlement follows (paying what was delivered, nothing here).
    const jobId = this.byCoreJob.get(coreJob)
    if (jobId) this.endLease(jobId, { kind: 'stopped' })
  }

  settled(notice: SettledNotice): void {
    const wake = this.settling.get(notice.job)
    if (wake) {
      this.settling.delete(notice.job)
      wake(notice.kudos)
    }
  }

  paused(notice: PausedNotice): void {
    this.lastPause = notice
  }

  replaced(): void {
    // A newer session holds the name; the workforce ends this one itself.
    this.shutDown()
  }

  suspended(): void {
    this.close('the owner was suspended by a moderator')
  }

  // --- the bridge: what the worker asks -----------------------------------------------------

  /**
   * A pop: a job at once when one is waiting for this worker, else held until dispatch offers
   * one or `waitMs` pass (null). `gone` tells whether the HTTP request has been abandoned.
   */
  pop(waitMs: number, gone: () => boolean): Promise<Handed | null> {
    this.touch()
    this.options.workforce.heartbeat(this.state)
    const ready = this.unclaimed.shift()
    if (ready || this.isClosed) return Promise.resolve(ready ?? null)
    return new Promise<Handed | null>((resolve) => {
      const waiter: Waiter = {
        gone,
        resolve: (job) => {
          clearTimeout(timer)
          if (!this.isClosed && !gone()) this.options.workforce.heartbeat(this.state)
          resolve(job)
        },
      }
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter)
        if (at !== -1) this.waiters.splice(at, 1)
        waiter.resolve(null)
      }, waitMs)
      timer.unref()
      this.waiters.push(waiter)
      this.options.workforce.available(this.state)
    })
  }

  /** True when this link holds the lease `jobId`. */
  holds(jobId: string): boolean {
    return this.leases.has(jobId)
  }

  /**
   * A submit of a leased job: `faulted` sends it back to the queue (reward 0); otherwise the
   * text is relayed and settled like a socket worker's `done`, and the reward is its kudos.
   */
  async submit(jobId: string, text: string, faulted: boolean): Promise<number> {
    const lease = this.leases.get(jobId)
    if (!lease) throw new BrokerError('unknown_job')
    const coreJob = lease.offer.job
    this.touch()
    this.options.workforce.heartbeat(this.state)
    this.endLease(jobId, { kind: 'submitted' })
    const { workforce } = this.options
    if (faulted) {
      workforce.fail(this.state, coreJob, 'the worker reported the generation as faulted')
      return 0
    }
    const reward = new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        this.settling.delete(coreJob)
        resolve(0)
      }, SETTLE_WAIT_MS)
      timer.unref()
      this.settling.set(coreJob, (kudos) => {
        clearTimeout(timer)
        resolve(kudos)
      })
    })
    try {
      if (text.length > 0) workforce.chunk(this.state, coreJob, 0, text)
      workforce.done(this.state, coreJob, text.length > 0 ? 1 : 0)
    } catch (error) {
      this.settling.delete(coreJob)
      // Too much text, or the job is no longer this worker's: it must not stay held.
      if (this.state.jobs.has(coreJob)) workforce.fail(this.state, coreJob, 'the submitted generation was refused')
      throw error
    }
    return reward
  }

  /** Ends the session: waiting pops answered empty, leased jobs back to their queues. */
  close(reason: string): void {
    if (this.isClosed) return
    this.shutDown()
    this.options.workforce.left(this.state, reason)
  }

  private shutDown(): void {
    if (this.isClosed) return
    this.isClosed = true
    clearTimeout(this.idleTimer)
    for (const waiter of this.waiters.splice(0)) waiter.resolve(null)
    for (const jobId of [...this.leases.keys()]) this.endLease(jobId, { kind: 'expired' })
    this.unclaimed.length = 0
    this.options.closedDown(this)
  }

  /** No submit within the TTL: the attempt is lost and the job goes back to its queue. */
  private expire(jobId: string): void {
    const lease = this.leases.get(jobId)
    if (!lease) return
    this.endLease(jobId, { kind: 'expired' })
    const at = this.unclaimed.findIndex((handed) => handed.jobId === jobId)
    if (at !== -1) this.unclaimed.splice(at, 1)
    if (this.state.jobs.has(lease.offer.job)) {
      this.options.workforce.fail(this.state, lease.offer.job, `no submit within the job's ttl of ${Math.round(this.options.jobTtlMs / 1000)} s`)
    }
  }

  private endLease(jobId: string, how: Ended): void {
    const lease = this.leases.get(jobId)
    if (!lease) return
    clearTimeout(lease.timer)
    this.leases.delete(jobId)
    if (this.byCoreJob.get(lease.offer.job) === jobId) this.byCoreJob.delete(lease.offer.job)
    this.options.ended(jobId, how)
  }

  /** The worker was seen: it stays online for the idle time from now. */
  private touch(): void {
    if (this.isClosed) return
    clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(() => this.close('no pop or submit for a while'), this.options.idleMs)
    this.idleTimer.unref()
  }
}
