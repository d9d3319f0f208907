/**
 * BullMQ, as the broker uses it: one queue per request class, and for each a `Worker`
 * with no processor that the broker drives by hand (non-blocking `getNextJob` when it has
 * a free volunteer for that class), renewing the locks of the jobs it holds. A process
 * that dies stops renewing; BullMQ's stalled check (run by every process) brings its jobs
 * back, and we put them back at their priority (a stalled job lands on the plain wait
 * list, ahead of every prioritized job, otherwise).
 *
 * It also keeps the per-user waiting index (`waiting-index.ts`) in step with BullMQ: a job
 * is indexed when it is added or comes back (restarted, stalled) and forgotten when it is
 * claimed or removed, so callers never write the index themselves.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Job, UnrecoverableError } from 'bullmq'
import type { Redis } from 'ioredis'
import { createBullKeys, type BullKeys } from './bull-keys.js'
import { closeClassQueue, openClassQueue, type ClassQueue } from './class-queue.js'
import type { RequestClass } from './classes.js'
import { HeldJobs } from './held-jobs.js'
import { ownerOf, type ClaimedJob, type JobData, type JobQueueEvents, type JobQueueOptions } from './job-types.js'
import { aheadOfNew, busyQueues, jobsExist, positionOf, queueHeads, waitingCounts, type Head, type QueueReadContext } from './queue-reads.js'
import { WaitingIndex } from './waiting-index.js'

export type { Head } from './queue-reads.js'
export type { ClaimedJob, JobData, JobQueueEvents, JobQueueOptions } from './job-types.js'

/** An open class queue with nothing in it for this long is closed (it holds timers and a registry entry). */
const IDLE_CLOSE_MS = 30_000

export class JobQueue extends EventEmitter<JobQueueEvents> {
  /** Classes known to this process, by queue name. */
  readonly classes = new Map<string, RequestClass>()
  private readonly queues = new Map<string, ClassQueue>()
  /** Jobs this process holds, for lock renewal. */
  private readonly held = new HeldJobs()
  /** The per-user index of waiting requests; read it here, it is written only by this class. */
  readonly waiting: WaitingIndex
  private readonly bull: BullKeys
  private readonly reads: QueueReadContext
  private renewTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor(private readonly options: JobQueueOptions) {
    super()
    this.bull = createBullKeys(options.keys.bullPrefix)
    this.reads = { redis: options.redis, bull: this.bull }
    this.waiting = new WaitingIndex(options.redis, options.keys)
  }

  private get redis(): Redis {
    return this.options.redis
  }

  start(): void {
    const renew = () => void this.held.renew((queue) => this.queues.get(queue)?.fetcher, this.options.lockMs)
    this.renewTimer = setInterval(renew, Math.max(50, Math.floor(this.options.lockMs / 3)))
    this.renewTimer.unref()
  }

  /**
   * Learns every class any process has registered (at start-up and when told of a new one),
   * and opens those that hold jobs: waiting ones to serve, active ones so that the stalled
   * check finds the jobs of a process that died. Empty classes stay closed until used.
   */
  async loadClasses(): Promise<RequestClass[]> {
    const all = await this.redis.hgetall(this.options.keys.classes)
    // Classes another process closed and forgot, that are not open here, are forgotten here too.
    for (const queue of [...this.classes.keys()]) if (!(queue in all) && !this.queues.has(queue)) this.classes.delete(queue)
    const added: RequestClass[] = []
    for (const [queue, json] of Object.entries(all)) {
      if (this.classes.has(queue)) continue
      const cls = JSON.parse(json) as RequestClass
      this.classes.set(queue, cls)
      added.push(cls)
    }
    const closed = [...this.classes.keys()].filter((queue) => !this.queues.has(queue))
    if (closed.length) {
      const busy = await this.busy(closed)
      closed.forEach((queue, i) => { if (busy[i]) this.open(this.classes.get(queue)!) })
    }
    return added
  }

  /** For each queue: does it hold any job, waiting or active? */
  private busy(queueNames: readonly string[]): Promise<boolean[]> {
    return busyQueues(this.reads, queueNames)
  }

  /**
   * Closes the queues of classes that have held no job for a while, so that classes used
   * once do not pile up stalled-check timers and registry entries. A closed class reopens when a job comes for it.
   */
  async closeIdle(now = performance.now()): Promise<number> {
    const idle = [...this.queues.values()].filter((entry) => now - entry.usedAt > IDLE_CLOSE_MS)
    if (idle.length === 0) return 0
    const busy = await this.busy(idle.map((entry) => entry.cls.queue))
    const held = this.held.queues()
    let closed = 0
    for (const [i, entry] of idle.entries()) {
      if (busy[i] || held.has(entry.cls.queue) || this.queues.get(entry.cls.queue) !== entry) continue
      this.queues.delete(entry.cls.queue)
      // Forgotten too (here and in the registry): the next request of this class registers it again.
      this.classes.delete(entry.cls.queue)
      await this.redis.hdel(this.options.keys.classes, entry.cls.queue).catch(() => {})
      closed++
      await closeClassQueue(entry)
    }
    return closed
  }

  /** Open queues (they share the one connection). */
  get openQueues(): number {
    return this.queues.size
  }

  /** The open queue of a known class, opening it if needed. */
  private entry(queueName: string): ClassQueue | undefined {
    const open = this.queues.get(queueName)
    if (open) return open
    const cls = this.classes.get(queueName)
    return cls && !this.closed ? this.open(cls) : undefined
  }

  /** Makes sure a class's queue exists here and is registered for other processes. */
  async ensureClass(cls: RequestClass): Promise<boolean> {
    // Known and open: registered already. Reopened after an idle close: register again,
    // since closing forgot it everywhere.
    if (this.classes.has(cls.queue) && this.queues.has(cls.queue)) return false
    this.open(cls)
    await this.redis.hset(this.options.keys.classes, cls.queue, JSON.stringify(cls))
    return true
  }

  /**
   * Writes every class this process knows back to the shared registry: a FLUSHALL empties it,
   * and `ensureClass` only writes a class the first time this process meets it.
   */
  async registerClasses(): Promise<void> {
    if (this.classes.size === 0) return
    await this.redis.hset(this.options.keys.classes, Object.fromEntries([...this.classes].map(([queue, cls]) => [queue, JSON.stringify(cls)])))
  }

  private open(cls: RequestClass): ClassQueue {
    const existing = this.queues.get(cls.queue)
    if (existing) return existing
    const entry = openClassQueue(cls, this.bull.prefix, this.options, (jobId) => void this.restoreStalled(cls.queue, jobId))
    this.queues.set(cls.queue, entry)
    this.classes.set(cls.queue, cls)
    return entry
  }

  /**
   * Queues a job at `priority` and indexes it under its user, both sent at once on the
   * shared connection (one round trip). A job already queued under this request id is left
   * as it is (BullMQ ignores the add), and the index write is idempotent.
   */
  async add(cls: RequestClass, data: JobData, priority: number): Promise<void> {
    const entry = this.open(cls)
    entry.usedAt = performance.now()
    await Promise.all([
      entry.queue.add('generate', data, {
        jobId: data.request,
        priority,
        attempts: this.options.maxAttempts,
        removeOnComplete: true,
        removeOnFail: true,
      }),
      this.waiting.add(data.userId, { queue: cls.queue, request: data.request, submittedAt: data.submittedAt }),
    ])
  }

  /**
   * A new submission: adds the job, records `priority` as its user's bucket (the one the
   * reprioritizer compares against), and tells how many jobs are ahead of it, in one round
   * trip. The count is written before BullMQ's add script on the same connection (the
   * queues share `redis`), and Redis runs one connection's commands in order: it sees the
   * queues as the new job finds them, whatever happens next.
   */
  async addWithPosition(cls: RequestClass, data: JobData, priority: number): Promise<number> {
    this.open(cls)
    const others = [...this.classes.keys()].filter((q) => q !== cls.queue)
    const ahead = aheadOfNew(this.reads, cls.queue, others, priority)
    const [position] = await Promise.all([ahead, this.add(cls, data, priority), this.waiting.setBucket(data.userId, priority)])
    return position
  }

  /** Pops the head of a class's queue for a volunteer of ours, or undefined when empty. */
  async claim(queueName: string): Promise<ClaimedJob | undefined> {
    const entry = this.entry(queueName)
    if (!entry || this.closed) return undefined
    entry.usedAt = performance.now()
    const token = randomUUID()
    const job = (await this.held.claiming(entry.fetcher.getNextJob(token, { block: false }))) as Job<JobData> | undefined
    if (!job) return undefined
    const claimed: ClaimedJob = { job, token, queue: queueName, attempt: Math.max(job.attemptsStarted, 1) }
    this.held.hold(claimed)
    // Not awaited, so delivery does not wait on it; it still reaches Redis before anything
    // this process sends later (one connection), such as the index write of a restart.
    void this.waiting.remove(job.data.userId, queueName, job.id!).catch(() => { /* a stale entry is harmless */ })
    return claimed
  }

  /** The job finished (settled or cancelled): remove it from the queue for good. */
  async complete(claimed: ClaimedJob): Promise<void> {
    this.held.release(claimed)
    await claimed.job.moveToCompleted('ok', claimed.token, false)
  }

  /**
   * The worker lost the job: back to its queue at its priority, for another worker. With
   * `failedBy` (the worker reported a failure), the job's data records that worker, so no
   * process offers the job to it again while another worker can serve it.
   */
  async restart(claimed: ClaimedJob, reason: string, options: { failedBy?: number } = {}): Promise<boolean> {
    this.held.release(claimed)
    if (claimed.job.attemptsMade + 1 >= this.options.maxAttempts) {
      await claimed.job.moveToFailed(new UnrecoverableError(reason), claimed.token, false)
      return false
    }
    const { failedBy } = options
    const data = claimed.job.data
    if (failedBy !== undefined && !data.failedBy?.includes(failedBy)) {
      // Written before the job is waiting again, so whoever takes it next reads it.
      await claimed.job.updateData({ ...data, failedBy: [...(data.failedBy ?? []), failedBy].slice(-32) }) // the last 32
    }
    await claimed.job.moveToFailed(new Error(reason), claimed.token, false)
    // Sent before dispatch hears of the job (same connection), awaited after.
    const indexed = this.reindex(claimed.queue, claimed.job.id!, claimed.job.data)
    this.emit('returned', claimed.queue, claimed.job.id!)
    await indexed
    return true
  }

  /** Puts back a claimed job no worker started: waiting at its priority again, no attempt counted. */
  async giveBack(claimed: ClaimedJob): Promise<void> {
    this.held.release(claimed)
    const id = claimed.job.id!
    // The claim counted a start (BullMQ's `ats`, our attempt number) that never happened;
    // undone while the job is still ours, before another process can take it.
    await this.redis.hincrby(this.bull.job(claimed.queue, id), 'ats', -1)
    await claimed.job.moveToWait(claimed.token)
    await this.reindex(claimed.queue, id, claimed.job.data)
    this.emit('returned', claimed.queue, id)
  }

  /** Ends a held job without another attempt. */
  async fail(claimed: ClaimedJob, reason: string): Promise<void> {
    this.held.release(claimed)
    await claimed.job.moveToFailed(new UnrecoverableError(reason), claimed.token, false)
  }

  /**
   * Removes a waiting job and its index entry; false when it is not waiting (running, or
   * gone). Pass the owner's `userId` when known; without it the job's data is read for it,
   * in the same round trip as the removal.
   */
  async removeWaiting(queueName: string, request: string, userId?: number): Promise<boolean> {
    const entry = this.entry(queueName)
    if (!entry) return false
    let removed: boolean
    let data: string | null | undefined
    try {
      // The read is sent first on the same connection, so it sees the job before it goes.
      ;[data, removed] = await Promise.all([
        userId === undefined ? this.redis.hget(this.bull.job(queueName, request), 'data') : undefined,
        entry.queue.remove(request).then((code) => code === 1),
      ])
    } catch {
      return false
    }
    const owner = userId ?? ownerOf(data)
    if (removed && owner !== undefined) void this.waiting.remove(owner, queueName, request).catch(() => { /* a stale entry is harmless */ })
    return removed
  }

  async changePriority(queueName: string, request: string, priority: number): Promise<boolean> {
    const entry = this.entry(queueName)
    if (!entry) return false
    try {
      await entry.queue.getBackend().changePriority(request, priority)
      return true
    } catch {
      return false // running or finished: nothing to move
    }
  }

  /**
   * The best waiting job of each named queue, in one round trip: its priority and request
   * id (ids sort by submission time, which breaks ties across queues).
   */
  heads(queueNames: readonly string[]): Promise<Head[]> {
    return queueHeads(this.reads, queueNames)
  }

  /** Waiting jobs per queue (plain + prioritized). */
  counts(queueNames: readonly string[]): Promise<Map<string, number>> {
    return waitingCounts(this.reads, queueNames)
  }

  /** Position of a waiting request: jobs ahead of it in its own queue, plus jobs elsewhere of a better priority or of its priority and submitted earlier. */
  position(queueName: string, request: string, priority: number): Promise<number | null> {
    const others = [...this.classes.keys()].filter((q) => q !== queueName)
    return positionOf(this.reads, queueName, request, others, priority)
  }

  /** A stalled job sits on the plain wait list now: give it back its priority. */
  private async restoreStalled(queueName: string, jobId: string): Promise<void> {
    const entry = this.queues.get(queueName)
    if (!entry) return
    try {
      const job = await Job.fromId<JobData>(entry.queue, jobId)
      if (job && job.priority > 0) await entry.queue.getBackend().changePriority(jobId, job.priority)
      if (job) await this.reindex(queueName, jobId, job.data)
    } catch { /* it may already be taken again */ }
    this.emit('returned', queueName, jobId)
  }

  /** Indexes a job that is waiting again under its user. */
  private reindex(queueName: string, request: string, data: JobData): Promise<unknown> {
    return this.waiting.add(data.userId, { queue: queueName, request, submittedAt: data.submittedAt })
  }

  /** Which of these requests have a job in Redis (waiting, running or about to be removed). */
  exists(items: ReadonlyArray<{ queue: string; request: string }>): Promise<boolean[]> {
    return jobsExist(this.reads, items)
  }

  /** True while a worker of this process holds the request's job. */
  isHeld(request: string): boolean {
    return this.held.has(request)
  }

  /** Resolves once the claims in flight now have come back: a job they took is held by then. */
  claimsSettled(): Promise<void> {
    return this.held.claimsSettled()
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.renewTimer)
    await Promise.all([...this.queues.values()].map(closeClassQueue))
  }
}
