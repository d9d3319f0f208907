/**
 * The worker port: what the core needs from a connected worker, whatever carries it (the
 * worker WebSocket today; a polling bridge tomorrow). The core pushes through a link and
 * never sees the socket; the link's transport turns each call into its own frames and codes.
 * `WorkerState` is the core's own record of one link: what it announced, the jobs it runs.
 */
import type { Principal } from '../accounts/accounts.js'
import type { Capabilities } from '../queue/classes.js'
import type { ClaimedJob } from '../queue/job-queue.js'

/** A job as the worker receives it. */
export interface JobOffer {
  /** The job's id (per attempt, not the request's id). */
  job: string
  attempt: number
  model: string
  prompt: string
  max_length: number
  max_context_length: number
  params: Record<string, unknown>
}

/** What the worker is told once a job it ran is settled. */
export interface SettledNotice {
  job: string
  outcome: 'done' | 'cancelled'
  tokens: number
  kudos: number
}

/** What a worker is told once it is registered. */
export interface Ready {
  /** The announce's own id, echoed. */
  id?: string | number
  worker_id: number
  name: string
  /** Priority users named in the announce that no account has. */
  unknown_priority_users: string[]
}

export interface WorkerLink {
  /** Unique per session: a reconnect is a new link. */
  readonly id: string
  /** The worker's owner. */
  readonly principal: Principal
  /** True once the transport has gone; the core sends nothing more. */
  readonly closed: boolean
  /** The announce was registered: jobs may follow. */
  ready(ready: Ready): void
  /** Hands a job to the worker. */
  offer(job: JobOffer): void
  /** Tells the worker to stop a job (cancelled by its requester). */
  stop(job: string): void
  settled(notice: SettledNotice): void
  /** A newer session took this worker's name: end this one. */
  replaced(): void
  /** The worker failed too many jobs in a row: no jobs for a while (optional for transports that cannot say it). */
  paused?(notice: PausedNotice): void
  /**
   * Jobs the transport can hand over right now, when it cannot take one at any moment (a
   * polling worker: the polls waiting for a job). Absent: as many as the worker's free slots.
   */
  readonly capacity?: number
  /** A moderator paused or unpaused the worker, or changed its trust (optional, like `paused`). */
  moderated?(notice: ModerationNotice): void
  /** The owner was suspended by a moderator: end the session with that code. */
  suspended(): void
}

/** What a worker is told of a moderator's decision about it. */
export interface ModerationNotice {
  /** Paused by a moderator: connected, offered no job, earning no uptime, until unpaused. */
  paused: boolean
  /** Marked trusted: it may serve requests that ask for trusted workers only. */
  trusted: boolean
  /** The moderator's reason (for a pause), or null. */
  reason: string | null
}

/** What a worker is told when the broker stops offering it jobs for a while. */
export interface PausedNotice {
  /** Seconds until jobs are offered again. */
  seconds: number
  /** Jobs failed in a row. */
  failures: number
  /** The last failure's reason. */
  reason: string
}

/** What a worker announced, as the core keeps it. */
export interface WorkerInfo extends Capabilities {
  /** Database id of the worker row. */
  id: number
  name: string
  modelList: string[]
  threads: number
  /** Owner first, then the named priority users: served before everyone else. */
  preferred: number[]
  /** A moderator marked it trusted (kept up to date while it is connected). */
  trusted: boolean
}

/** A job running on one of this process's workers. */
export interface RunningJob {
  /** The job's own id, the one its worker knows: new for each attempt, so no worker learns a request's id. */
  id: string
  claimed: ClaimedJob
  request: string
  attempt: number
  model: string
  /** Next expected chunk sequence number. */
  seq: number
  /** Relayed text, in order; joined once at the end. */
  parts: string[]
  chars: number
  dispatchedAt: number
  firstChunkAt: number | null
}

export class WorkerState {
  info: WorkerInfo | null = null
  readonly jobs = new Map<string, RunningJob>()
  /** Slots promised to a claim in flight, so that two claims never overfill the worker. */
  reserved = 0
  /**
   * Requests this worker failed: not offered to it again while another worker can serve
   * them. This process's copy of what the jobs' data says (`JobData.failedBy`), learnt from
   * the failures seen here and from the jobs' data when one is claimed for this worker.
   */
  readonly avoid = new Set<string>()
  /** Jobs failed in a row (reset by a finished one), and the pauses that earned. */
  failStreak = 0
  pauses = 0
  /** Monotonic ms until which the worker gets no jobs (too many failures in a row). */
  pausedUntil = 0
  /** The worker asked for no more jobs (maintenance: it finishes what it runs). */
  maintenance = false
  /** Wall-clock ms of the announce (the pages count uptime on from it). */
  since = 0
  /** A moderator paused it (the reason), or null: no jobs until unpaused. */
  moderatorPause: string | null = null

  constructor(readonly link: WorkerLink) {}

  /** Slots free for another job. */
  get free(): number {
    if (!this.info || this.link.closed || this.maintenance || this.moderatorPause !== null || performance.now() < this.pausedUntil) return 0
    const slots = this.info.threads - this.jobs.size - this.reserved
    const capacity = this.link.capacity
    return capacity === undefined ? slots : Math.min(slots, capacity - this.reserved)
  }
}
