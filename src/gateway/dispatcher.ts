/**
 * Dispatch: matches this process's free workers to waiting jobs. Nothing polls. A job
 * added (here, or in another process, announced on a Redis channel) makes us claim it for
 * a free worker of ours that can serve its class; a worker that becomes free takes, in
 * order, its owner's and priority users' waiting requests, then the best head among the
 * queues it can serve (lowest priority number, then oldest). A process only claims a job
 * when it has a free worker for it, so one process's busy workers never hold jobs that
 * another process's idle workers could run.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { PRIORITY_PREFERRED } from '../economy/priority.js'
import { canServe, type RequestClass } from '../queue/classes.js'
import type { ClaimedJob, JobQueue } from '../queue/job-queue.js'
import type { Keys } from '../queue/keys.js'
import type { WorkerSession } from './worker-session.js'

export interface DispatcherDeps {
  jobQueue: JobQueue
  redis: Redis
  /** A connection in subscriber mode, for the dispatch channel. */
  subscriber?: Redis
  keys: Keys
  sessions: Set<WorkerSession>
  deliver(session: WorkerSession, claimed: ClaimedJob): Promise<boolean>
  log(error: unknown): void
  /** Seconds between safety sweeps over queues with waiting jobs. */
  sweepSeconds?: number
  /** Awaited before choosing among waiting jobs: lets pending priority moves land first. */
  settled?: () => Promise<void>
}

export interface Dispatcher {
  /** A job was added to or returned to `queue`; `local` ones are announced to other processes too. */
  jobAvailable(queue: string, local: boolean): void
  workerFree(session: WorkerSession): void
  workerJoined(session: WorkerSession): Promise<void>
  workerLeft(session: WorkerSession): void
  isPossible(cls: RequestClass): Promise<boolean>
  /** Workers connected to any live broker process (cached for a second). */
  onlineWorkers(): Promise<OnlineWorker[]>
  recordCompletion(ms: number): void
  /** Rough seconds until a request at `position` starts. */
  eta(position: number, cls: RequestClass): number
  sweep(): Promise<void>
  close(): Promise<void>
}

/** A connected worker as every process sees it (the registry hash in Redis). */
export interface OnlineWorker {
  name: string
  owner: string
  models: string[]
  threads: number
  maxLength: number
  maxContextLength: number
  /** The broker process holding its socket. */
  process: string
}

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { jobQueue, redis, keys, sessions } = deps
  const busyQueues = new Set<string>()
  const againQueues = new Set<string>()
  const pumping = new Set<WorkerSession>()
  const pumpAgain = new Set<WorkerSession>()
  let closed = false
  let avgJobMs = 10_000
  let globalCache: { at: number; workers: OnlineWorker[] } | undefined
  // This process's liveness key: registry entries of a process whose key expired (it died
  // without removing its workers) are ignored and cleaned up.
  const processId = randomUUID()
  const aliveMs = 10_000
  const markAlive = () => void redis.set(keys.process(processId), '1', 'PX', aliveMs * 3).catch(deps.log)
  markAlive()
  const aliveTimer = setInterval(markAlive, aliveMs)
  aliveTimer.unref()

  if (deps.subscriber) {
    void deps.subscriber.subscribe(keys.dispatchChannel).catch(deps.log)
    deps.subscriber.on('message', (channel, queue) => {
      if (channel !== keys.dispatchChannel || closed) return
      if (!jobQueue.classes.has(queue)) {
        void jobQueue.loadClasses().then(() => serveQueue(queue), deps.log)
      } else {
        void serveQueue(queue)
      }
    })
  }
  jobQueue.on('returned', (queue) => jobAvailable(queue, true))

  const sweepTimer = setInterval(() => void sweep().catch(deps.log), (deps.sweepSeconds ?? 2) * 1000)
  sweepTimer.unref()

  function jobAvailable(queue: string, local: boolean): void {
    if (closed) return
    if (local) void redis.publish(keys.dispatchChannel, queue).catch(deps.log)
    void serveQueue(queue)
  }

  /** Picks a free worker for a class, round-robin: the chosen one moves to the back. */
  function pickFree(cls: RequestClass): WorkerSession | undefined {
    for (const session of sessions) {
      if (session.free > 0 && session.info && canServe(session.info, cls)) {
        sessions.delete(session)
        sessions.add(session)
        return session
      }
    }
    return undefined
  }

  async function serveQueue(queue: string): Promise<void> {
    if (busyQueues.has(queue)) {
      againQueues.add(queue)
      return
    }
    busyQueues.add(queue)
    try {
      const cls = jobQueue.classes.get(queue)
      while (cls && !closed) {
        const session = pickFree(cls)
        if (!session) break
        session.reserved++
        let claimed: ClaimedJob | undefined
        try {
          claimed = await jobQueue.claim(queue)
        } finally {
          session.reserved--
        }
        if (!claimed) break
        await deliver(session, claimed)
      }
    } catch (error) {
      deps.log(error)
    } finally {
      busyQueues.delete(queue)
      if (againQueues.delete(queue)) void serveQueue(queue)
    }
  }

  async function deliver(session: WorkerSession, claimed: ClaimedJob): Promise<void> {
    // A job handed to a worker that is gone is put back by deliver itself.
    await deps.deliver(session, claimed)
  }

  function eligibleQueues(session: WorkerSession): string[] {
    const queues: string[] = []
    for (const [queue, cls] of jobQueue.classes) if (canServe(session.info!, cls)) queues.push(queue)
    return queues
  }

  /** The owner's, then the priority users' waiting requests this worker can serve, oldest first within each group. */
  async function preferredCandidate(session: WorkerSession): Promise<{ queue: string; request: string } | undefined> {
    const preferred = session.info!.preferred
    const pipeline = redis.pipeline()
    for (const userId of preferred) pipeline.zrange(keys.waiting(userId), '0', '49', 'WITHSCORES')
    const results = (await pipeline.exec()) ?? []
    const others: Array<{ queue: string; request: string; score: number }> = []
    for (let i = 0; i < preferred.length; i++) {
      const flat = (results[i]?.[1] as string[] | undefined) ?? []
      for (let j = 0; j < flat.length; j += 2) {
        const [queue, request] = flat[j].split('|')
        const cls = jobQueue.classes.get(queue)
        if (!cls || !canServe(session.info!, cls)) continue
        // The owner's own requests come first, in their order.
        if (i === 0) return { queue, request }
        others.push({ queue, request, score: Number(flat[j + 1]) })
      }
    }
    others.sort((a, b) => a.score - b.score || (a.request < b.request ? -1 : 1))
    return others[0]
  }

  async function claimFor(session: WorkerSession): Promise<ClaimedJob | undefined | null> {
    if (deps.settled) await deps.settled()
    // Both looks in one round trip: the preferred users' requests, and the heads of the queues.
    const [preferred, heads] = await Promise.all([preferredCandidate(session), jobQueue.heads(eligibleQueues(session))])
    if (preferred) {
      // Lift it to the reserved top priority and pop its queue: it is the head now, unless
      // another worker took it first (then whatever we pop is still a job we can serve).
      if (await jobQueue.changePriority(preferred.queue, preferred.request, PRIORITY_PREFERRED)) {
        const claimed = await jobQueue.claim(preferred.queue)
        if (claimed) return claimed
      }
    }
    if (heads.length === 0) return null
    let best = heads[0]
    for (const head of heads) {
      if (head.priority < best.priority || (head.priority === best.priority && head.request < best.request)) best = head
    }
    return jobQueue.claim(best.queue)
  }

  async function pumpWorker(session: WorkerSession): Promise<void> {
    if (pumping.has(session)) {
      pumpAgain.add(session)
      return
    }
    pumping.add(session)
    try {
      let misses = 0
      while (!closed && session.free > 0 && sessions.has(session) && misses < 3) {
        session.reserved++
        let claimed: ClaimedJob | undefined | null
        try {
          claimed = await claimFor(session)
        } finally {
          session.reserved--
        }
        if (claimed === null) break
        if (!claimed) {
          misses++ // raced with another worker for the head: look again
          continue
        }
        await deliver(session, claimed)
      }
    } catch (error) {
      deps.log(error)
    } finally {
      pumping.delete(session)
      if (pumpAgain.delete(session)) void pumpWorker(session)
    }
  }

  async function sweep(): Promise<void> {
    if (closed) return
    await jobQueue.closeIdle()
    if (sessions.size === 0) return
    await jobQueue.loadClasses()
    const queues = [...jobQueue.classes.keys()]
    if (queues.length === 0) return
    const counts = await jobQueue.counts(queues)
    for (const [queue, n] of counts) if (n > 0) void serveQueue(queue)
  }

  async function globalWorkers(): Promise<OnlineWorker[]> {
    const now = Date.now()
    if (globalCache && now - globalCache.at < 1000) return globalCache.workers
    const all = (await redis.hvals(keys.workers)).map((json) => JSON.parse(json) as OnlineWorker)
    const processes = [...new Set(all.map((w) => w.process))]
    const alive = processes.length ? await redis.mget(...processes.map((p) => keys.process(p))) : []
    const live = new Set(processes.filter((_, i) => alive[i] !== null))
    const dead = all.filter((w) => !live.has(w.process))
    if (dead.length) void redis.hdel(keys.workers, ...dead.map((w) => w.name)).catch(deps.log)
    const list = all.filter((w) => live.has(w.process))
    globalCache = { at: now, workers: list }
    return list
  }

  return {
    jobAvailable,
    workerFree(session) {
      void pumpWorker(session)
    },
    async workerJoined(session) {
      const info = session.info!
      globalCache = undefined
      await redis.hset(keys.workers, info.name, JSON.stringify({
        name: info.name, owner: session.principal.username, models: info.modelList, threads: info.threads,
        maxLength: info.maxLength, maxContextLength: info.maxContextLength, process: processId,
      } satisfies OnlineWorker))
    },
    workerLeft(session) {
      globalCache = undefined
      if (session.info) void redis.hdel(keys.workers, session.info.name).catch(deps.log)
    },
    async isPossible(cls) {
      for (const session of sessions) if (session.info && canServe(session.info, cls)) return true
      for (const worker of await globalWorkers()) {
        if (canServe({ models: new Set(worker.models), maxLength: worker.maxLength, maxContextLength: worker.maxContextLength }, cls)) return true
      }
      return false
    },
    onlineWorkers: globalWorkers,
    recordCompletion(ms) {
      avgJobMs = avgJobMs * 0.9 + ms * 0.1
    },
    eta(position, cls) {
      let servers = 0
      for (const session of sessions) if (session.info && canServe(session.info, cls)) servers += session.info.threads
      return Math.ceil(((position + 1) * avgJobMs) / 1000 / Math.max(servers, 1))
    },
    sweep,
    async close() {
      closed = true
      clearInterval(sweepTimer)
      clearInterval(aliveTimer)
      await redis.del(keys.process(processId)).catch(deps.log)
      if (deps.subscriber) await deps.subscriber.quit().catch(() => deps.subscriber!.disconnect())
    },
  }
}
