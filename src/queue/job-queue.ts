/**
 * BullMQ, as the broker uses it: one queue per request class, and for each a `Worker`
 * with no processor that the broker drives by hand (non-blocking `getNextJob` when it has
 * a free volunteer for that class), renewing the locks of the jobs it holds. A process
 * that dies stops renewing; BullMQ's stalled check (run by every process) brings its jobs
 * back, and we put them back at their priority (a stalled job lands on the plain wait
 * list, ahead of every prioritized job, otherwise).
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Job, Queue, UnrecoverableError, Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Keys } from './keys.js'
import type { RequestClass } from './classes.js'

/** What a waiting job carries: everything a worker needs, so dispatch reads only Redis. */
export interface JobData {
  request: string
  userId: number
  prompt: string
  models: string[]
  max_length: number
  max_context_length: number
  params: Record<string, unknown>
  submittedAt: number
  classKey: string
}

export interface ClaimedJob {
  job: Job<JobData>
  token: string
  queue: string
  /** 1 for the first dispatch, +1 for each restart. */
  attempt: number
}

export interface Head {
  queue: string
  request: string
  priority: number
}

export interface JobQueueEvents {
  /** A job came back to a queue (stalled, restarted); dispatch should look at it. */
  returned: [queue: string, request: string]
}

export interface JobQueueOptions {
  redis: Redis
  keys: Keys
  /** How long a claimed job stays locked without renewal; a dead process's jobs return after this. */
  lockMs: number
  /** Attempts before a job that keeps losing its worker fails for good. */
  maxAttempts: number
}

interface ClassQueue {
  cls: RequestClass
  queue: Queue<JobData>
  fetcher: Worker<JobData>
  /** Monotonic ms of the last add or claim, for closing idle queues. */
  usedAt: number
}

/** An open class queue with nothing in it for this long is closed (its fetcher holds a Redis connection). */
const IDLE_CLOSE_MS = 30_000

export class JobQueue extends EventEmitter<JobQueueEvents> {
  /** Classes known to this process, by queue name. */
  readonly classes = new Map<string, RequestClass>()
  private readonly queues = new Map<string, ClassQueue>()
  /** Jobs this process holds, for lock renewal. */
  private readonly held = new Map<string, ClaimedJob>()
  private renewTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor(private readonly options: JobQueueOptions) {
    super()
  }

  private get redis(): Redis {
    return this.options.redis
  }

  start(): void {
    this.renewTimer = setInterval(() => void this.renewLocks(), Math.max(50, Math.floor(this.options.lockMs / 3)))
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
  private async busy(queueNames: readonly string[]): Promise<boolean[]> {
    const prefix = this.options.keys.bullPrefix
    const pipeline = this.redis.pipeline()
    for (const name of queueNames) {
      pipeline.llen(`${prefix}:${name}:wait`)
      pipeline.zcard(`${prefix}:${name}:prioritized`)
      pipeline.llen(`${prefix}:${name}:active`)
    }
    const results = (await pipeline.exec()) ?? []
    return queueNames.map((_, i) => [0, 1, 2].some((k) => Number(results[3 * i + k]?.[1] ?? 0) > 0))
  }

  /**
   * Closes the queues of classes that have held no job for a while, so that made-up model
   * names cannot pile up Redis connections. A closed class reopens when a job comes for it.
   */
  async closeIdle(now = performance.now()): Promise<number> {
    const idle = [...this.queues.values()].filter((entry) => now - entry.usedAt > IDLE_CLOSE_MS)
    if (idle.length === 0) return 0
    const busy = await this.busy(idle.map((entry) => entry.cls.queue))
    const held = new Set([...this.held.values()].map((claimed) => claimed.queue))
    let closed = 0
    for (const [i, entry] of idle.entries()) {
      if (busy[i] || held.has(entry.cls.queue) || this.queues.get(entry.cls.queue) !== entry) continue
      this.queues.delete(entry.cls.queue)
      // Forgotten too (here and in the registry): the next request of this class registers it again.
      this.classes.delete(entry.cls.queue)
      await this.redis.hdel(this.options.keys.classes, entry.cls.queue).catch(() => {})
      closed++
      await entry.fetcher.close(true).catch(() => {})
      await entry.queue.close().catch(() => {})
    }
    return closed
  }

  /** Open queues (each holds one Redis connection for its fetcher). */
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
    const prefix = this.options.keys.bullPrefix
    const queue = new Queue<JobData>(cls.queue, { connection: this.redis, prefix })
    const fetcher = new Worker<JobData>(cls.queue, null, {
      connection: this.redis,
      prefix,
      autorun: false,
      lockDuration: this.options.lockMs,
      stalledInterval: this.options.lockMs,
      maxStalledCount: this.options.maxAttempts,
    })
    fetcher.on('error', () => { /* connection errors surface through /health */ })
    fetcher.on('stalled', (jobId) => void this.restoreStalled(cls.queue, jobId))
    void fetcher.startStalledCheckTimer().catch(() => {})
    const entry = { cls, queue, fetcher, usedAt: performance.now() }
    this.queues.set(cls.queue, entry)
    this.classes.set(cls.queue, cls)
    return entry
  }

  async add(cls: RequestClass, data: JobData, priority: number): Promise<void> {
    const entry = this.open(cls)
    entry.usedAt = performance.now()
    const { queue } = entry
    await queue.add('generate', data, {
      jobId: data.request,
      priority,
      attempts: this.options.maxAttempts,
      removeOnComplete: true,
      removeOnFail: true,
    })
  }

  /**
   * Adds a job and tells how many jobs are ahead of it, in one round trip instead of two.
   * The count is written before BullMQ's add script on the same connection (the queues
   * share `redis`), and Redis runs one connection's commands in order: it sees the queues
   * as the new job finds them, whatever happens next.
   */
  async addWithPosition(cls: RequestClass, data: JobData, priority: number): Promise<number> {
    this.open(cls)
    const ahead = this.aheadOfNew(cls.queue, priority)
    const [position] = await Promise.all([ahead, this.add(cls, data, priority)])
    return position
  }

  /** Jobs a job added now at `priority` would have ahead of it (FIFO within a priority). */
  private aheadOfNew(queueName: string, priority: number): Promise<number> {
    const prefix = this.options.keys.bullPrefix
    const pipeline = this.redis.pipeline()
    pipeline.zcount(`${prefix}:${queueName}:prioritized`, '0', String((priority + 1) * 0x100000000 - 1))
    const others = [...this.classes.keys()].filter((q) => q !== queueName)
    for (const name of [queueName, ...others]) pipeline.llen(`${prefix}:${name}:wait`)
    for (const name of others) pipeline.zcount(`${prefix}:${name}:prioritized`, '0', String(priority * 0x100000000 - 1))
    return pipeline.exec().then((results) => (results ?? []).reduce((sum, [, n]) => sum + Number(n ?? 0), 0))
  }

  /** Pops the head of a class's queue for a volunteer of ours, or undefined when empty. */
  async claim(queueName: string): Promise<ClaimedJob | undefined> {
    const entry = this.entry(queueName)
    if (!entry || this.closed) return undefined
    entry.usedAt = performance.now()
    const token = randomUUID()
    const job = (await entry.fetcher.getNextJob(token, { block: false })) as Job<JobData> | undefined
    if (!job) return undefined
    const claimed: ClaimedJob = { job, token, queue: queueName, attempt: Math.max(job.attemptsStarted, 1) }
    this.held.set(job.id!, claimed)
    return claimed
  }

  /**
   * Stops renewing this claim's lock. Only this claim's: when a lock was lost (Redis away, or
   * this process stalled, for longer than the lock) the stalled check may have handed the
   * same job to a newer claim, and the stale claim ending must not stop the live one's
   * renewals (its lock would expire and a third worker would get the job).
   */
  private release(claimed: ClaimedJob): void {
    if (this.held.get(claimed.job.id!) === claimed) this.held.delete(claimed.job.id!)
  }

  /** The job finished (settled or cancelled): remove it from the queue for good. */
  async complete(claimed: ClaimedJob): Promise<void> {
    this.release(claimed)
    await claimed.job.moveToCompleted('ok', claimed.token, false)
  }

  /** The worker lost the job: back to its queue at its priority, for another worker. */
  async restart(claimed: ClaimedJob, reason: string): Promise<boolean> {
    this.release(claimed)
    if (claimed.job.attemptsMade + 1 >= this.options.maxAttempts) {
      await claimed.job.moveToFailed(new UnrecoverableError(reason), claimed.token, false)
      return false
    }
    await claimed.job.moveToFailed(new Error(reason), claimed.token, false)
    this.emit('returned', claimed.queue, claimed.job.id!)
    return true
  }

  /** Ends a held job without another attempt. */
  async fail(claimed: ClaimedJob, reason: string): Promise<void> {
    this.release(claimed)
    await claimed.job.moveToFailed(new UnrecoverableError(reason), claimed.token, false)
  }

  /** Removes a waiting job; false when it is not waiting (running, or gone). */
  async removeWaiting(queueName: string, request: string): Promise<boolean> {
    const entry = this.entry(queueName)
    if (!entry) return false
    try {
      return (await entry.queue.remove(request)) === 1
    } catch {
      return false
    }
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
  async heads(queueNames: readonly string[]): Promise<Head[]> {
    if (queueNames.length === 0) return []
    const prefix = this.options.keys.bullPrefix
    const pipeline = this.redis.pipeline()
    for (const name of queueNames) {
      pipeline.lrange(`${prefix}:${name}:wait`, '-1', '-1')
      pipeline.zrange(`${prefix}:${name}:prioritized`, '0', '0', 'WITHSCORES')
    }
    const results = (await pipeline.exec()) ?? []
    const heads: Head[] = []
    queueNames.forEach((queue, i) => {
      const plain = results[2 * i]?.[1] as string[] | undefined
      const prioritized = results[2 * i + 1]?.[1] as string[] | undefined
      // Jobs on the plain wait list (priority 0) are popped before any prioritized job.
      if (plain && plain.length) heads.push({ queue, request: plain[0], priority: 0 })
      else if (prioritized && prioritized.length) heads.push({ queue, request: prioritized[0], priority: Math.floor(Number(prioritized[1]) / 0x100000000) })
    })
    return heads
  }

  /** Waiting jobs per queue (plain + prioritized). */
  async counts(queueNames: readonly string[]): Promise<Map<string, number>> {
    const prefix = this.options.keys.bullPrefix
    const pipeline = this.redis.pipeline()
    for (const name of queueNames) {
      pipeline.llen(`${prefix}:${name}:wait`)
      pipeline.zcard(`${prefix}:${name}:prioritized`)
    }
    const results = (await pipeline.exec()) ?? []
    const counts = new Map<string, number>()
    queueNames.forEach((name, i) => counts.set(name, Number(results[2 * i]?.[1] ?? 0) + Number(results[2 * i + 1]?.[1] ?? 0)))
    return counts
  }

  /** Position of a waiting request: jobs ahead of it in its own queue plus better-priority jobs elsewhere. */
  async position(queueName: string, request: string, priority: number): Promise<number | null> {
    const prefix = this.options.keys.bullPrefix
    const pipeline = this.redis.pipeline()
    pipeline.zrank(`${prefix}:${queueName}:prioritized`, request)
    const others = [...this.classes.keys()].filter((q) => q !== queueName)
    for (const name of [queueName, ...others]) pipeline.llen(`${prefix}:${name}:wait`)
    for (const name of others) pipeline.zcount(`${prefix}:${name}:prioritized`, '0', String(priority * 0x100000000 - 1))
    const results = (await pipeline.exec()) ?? []
    const rank = results[0]?.[1]
    if (rank === null || rank === undefined) return null
    let ahead = Number(rank)
    for (let i = 1; i < results.length; i++) ahead += Number(results[i]?.[1] ?? 0)
    return ahead
  }

  private async renewLocks(): Promise<void> {
    if (this.held.size === 0) return
    const byQueue = new Map<string, ClaimedJob[]>()
    for (const claimed of this.held.values()) {
      const list = byQueue.get(claimed.queue) ?? []
      list.push(claimed)
      byQueue.set(claimed.queue, list)
    }
    await Promise.all([...byQueue].map(async ([queue, jobs]) => {
      const entry = this.queues.get(queue)
      if (!entry) return
      try {
        await entry.fetcher.extendJobLocks(jobs.map((c) => c.job.id!), jobs.map((c) => c.token), this.options.lockMs)
      } catch { /* Redis away: the jobs may stall and come back; settlement stays exactly-once */ }
    }))
  }

  /** A stalled job sits on the plain wait list now: give it back its priority. */
  private async restoreStalled(queueName: string, jobId: string): Promise<void> {
    const entry = this.queues.get(queueName)
    if (!entry) return
    try {
      const job = await Job.fromId<JobData>(entry.queue, jobId)
      if (job && job.priority > 0) await entry.queue.getBackend().changePriority(jobId, job.priority)
      if (job) await this.redis.zadd(this.options.keys.waiting(job.data.userId), job.data.submittedAt, `${queueName}|${jobId}`)
    } catch { /* it may already be taken again */ }
    this.emit('returned', queueName, jobId)
  }

  /** Which of these requests have a job in Redis (waiting, running or about to be removed). */
  async exists(items: ReadonlyArray<{ queue: string; request: string }>): Promise<boolean[]> {
    if (items.length === 0) return []
    const prefix = this.options.keys.bullPrefix
    const pipeline = this.redis.pipeline()
    for (const { queue, request } of items) pipeline.exists(`${prefix}:${queue}:${request}`)
    const results = (await pipeline.exec()) ?? []
    return results.map(([error, n]) => !error && Number(n) > 0)
  }

  isHeld(request: string): boolean {
    return this.held.has(request)
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.renewTimer)
    await Promise.all([...this.queues.values()].map(async ({ queue, fetcher }) => {
      await fetcher.close(true).catch(() => {})
      await queue.close().catch(() => {})
    }))
  }
}
