/**
 * Dispatch: matches this process's free workers to waiting jobs. Nothing polls. A job
 * added (here, or in another process, announced on a Redis channel) makes us claim it for
 * a free worker of ours that can serve its class; a worker that becomes free takes, in
 * order, its owner's and priority users' waiting requests, then the best head among the
 * queues it can serve (lowest priority number, then oldest). A process only claims a job
 * when it has a free worker for it, so one process's busy workers never hold jobs that
 * another process's idle workers could run.
 */
import type { Redis } from 'ioredis'
import type { OnlineWorker, WorkerRegistry } from '../cluster/ports.js'
import { PRIORITY_PREFERRED } from '../economy/priority.js'
import { canServe, type Capabilities, type RequestClass } from '../queue/classes.js'
import type { ClaimedJob, JobQueue } from '../queue/job-queue.js'
import type { Keys } from '../queue/keys.js'
import type { WaitingEntry } from '../queue/waiting-index.js'
import { Coalescer } from '../util/coalescer.js'
import type { WorkerState } from './worker-link.js'

export interface DispatcherDeps {
  jobQueue: JobQueue
  redis: Redis
  /** A connection in subscriber mode, for the dispatch channel. */
  subscriber?: Redis
  keys: Keys
  /** This process's announced workers; the order is the round-robin order. */
  workers: Set<WorkerState>
  /** Every process's workers. */
  registry: WorkerRegistry
  deliver(worker: WorkerState, claimed: ClaimedJob): Promise<boolean>
  log(error: unknown): void
  /** Seconds between safety sweeps over queues with waiting jobs. */
  sweepSeconds?: number
  /** Awaited before choosing among waiting jobs: lets pending priority moves land first. */
  settled?: () => Promise<void>
}

export interface Dispatcher {
  /** A job was added to or returned to `queue`; `local` ones are announced to other processes too. */
  jobAvailable(queue: string, local: boolean): void
  workerFree(worker: WorkerState): void
  /** Could a worker of ours take a job of this class now? (Then a new submission takes the fast path.) */
  hasFree(cls: RequestClass): boolean
  /**
   * The fast path for a new job: `add` is called and, when a free worker of ours serves its
   * class, the claim for that worker is sent right behind it on the same connection, so the
   * worker usually has the job after one round trip. Resolves with what `add` returned and
   * the request whose job the claim took (the new one, or an older head), or null.
   */
  addAndClaim<T>(cls: RequestClass, add: () => Promise<T>): Promise<{ added: T; claimed: string | null }>
  isPossible(cls: RequestClass): Promise<boolean>
  /** Is there a worker other than `worker` (in any process) that serves `cls` and takes jobs now? */
  othersCanServe(worker: WorkerState, cls: RequestClass): Promise<boolean>
  /** Workers connected to any live broker process (cached for a second). */
  onlineWorkers(): Promise<OnlineWorker[]>
  recordCompletion(ms: number): void
  /** Rough seconds until a request at `position` starts. */
  eta(position: number, cls: RequestClass): number
  sweep(): Promise<void>
  /** A drain: no more jobs for this process's workers; jobs that come back are still announced to other processes. */
  pause(): void
  close(): Promise<void>
}

export type { OnlineWorker }

/** What a registry entry says a worker can serve. */
function registryCapabilities(worker: OnlineWorker): Capabilities {
  return { models: new Set(worker.models), maxLength: worker.maxLength, maxContextLength: worker.maxContextLength, trusted: worker.trusted === true }
}

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { jobQueue, redis, keys, registry } = deps
  const workers = deps.workers
  // One pass at a time per queue and per worker; a request during a pass runs it once more after.
  const serving = new Coalescer<string>({ onError: deps.log })
  const pumping = new Coalescer<WorkerState>({ onError: deps.log })
  let closed = false
  let paused = false
  let avgJobMs = 10_000
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
    if (!paused) void serveQueue(queue)
  }

  /**
   * Is there a worker other than `worker` (here or in another process) that serves `cls`
   * and can take jobs? Then a request `worker` failed waits for that one instead.
   */
  async function othersCanServe(worker: WorkerState, cls: RequestClass): Promise<boolean> {
    for (const other of workers) {
      if (other !== worker && other.info && !other.maintenance && other.moderatorPause === null && other.pausedUntil <= performance.now() && canServe(other.info, cls)) return true
    }
    for (const other of await registry.online()) {
      // This process's workers were judged above, with their pauses; skip their registry entries.
      if (other.name === worker.info?.name || [...workers].some((w) => w.info?.name === other.name)) continue
      if (!other.paused && canServe(registryCapabilities(other), cls)) return true
    }
    return false
  }

  /** True when `worker` failed this queue's head and another worker can serve it. */
  async function avoidsHead(worker: WorkerState, queue: string, cls: RequestClass): Promise<boolean> {
    if (worker.avoid.size === 0) return false
    const [head] = await jobQueue.heads([queue])
    return head !== undefined && worker.avoid.has(head.request) && await othersCanServe(worker, cls)
  }

  /** Picks a free worker for a class, round-robin: the chosen one moves to the back. */
  async function pickFree(queue: string, cls: RequestClass): Promise<WorkerState | undefined> {
    for (const worker of [...workers]) {
      if (worker.free > 0 && worker.info && canServe(worker.info, cls) && !await avoidsHead(worker, queue, cls)) {
        workers.delete(worker)
        workers.add(worker)
        return worker
      }
    }
    return undefined
  }

  /** A free worker of ours for a new job of `cls`, round-robin (nobody has failed a new job, so no head is avoided). */
  function freeFor(cls: RequestClass): WorkerState | undefined {
    if (closed || paused) return undefined
    for (const worker of workers) {
      if (worker.free > 0 && worker.info && canServe(worker.info, cls)) {
        workers.delete(worker)
        workers.add(worker)
        return worker
      }
    }
    return undefined
  }

  async function addAndClaim<T>(cls: RequestClass, add: () => Promise<T>): Promise<{ added: T; claimed: string | null }> {
    const worker = freeFor(cls)
    if (!worker) return { added: await add(), claimed: null }
    worker.reserved++
    let results: [PromiseSettledResult<T>, PromiseSettledResult<ClaimedJob | undefined>]
    try {
      // Both are written to the one connection in this order: Redis runs the claim after the add.
      results = await Promise.allSettled([add(), jobQueue.claim(cls.queue)])
    } finally {
      worker.reserved--
    }
    const [added, claim] = results
    const claimed = claim.status === 'fulfilled' ? claim.value : undefined
    // Whatever the claim took is the best job this worker can serve: it gets it even if the add failed.
    if (claimed) void deliver(worker, claimed).catch(deps.log)
    if (added.status === 'rejected') throw added.reason
    return { added: added.value, claimed: claimed?.job.id ?? null }
  }

  /** Claims jobs of `queue` for free workers of ours until one of the two runs out. */
  function serveQueue(queue: string): Promise<void> {
    return serving.run(queue, async () => {
      const cls = jobQueue.classes.get(queue)
      while (cls && !closed && !paused) {
        const worker = await pickFree(queue, cls)
        if (!worker) break
        worker.reserved++
        let claimed: ClaimedJob | undefined
        try {
          claimed = await jobQueue.claim(queue)
        } finally {
          worker.reserved--
        }
        if (!claimed) break
        await deliver(worker, claimed)
      }
    })
  }

  async function deliver(worker: WorkerState, claimed: ClaimedJob): Promise<void> {
    // A job handed to a worker that is gone is put back by deliver itself.
    await deps.deliver(worker, claimed)
  }

  function eligibleQueues(worker: WorkerState): string[] {
    const queues: string[] = []
    for (const [queue, cls] of jobQueue.classes) if (canServe(worker.info!, cls)) queues.push(queue)
    return queues
  }

  /** The owner's, then the priority users' waiting requests this worker can serve, oldest first within each group. */
  async function preferredCandidate(worker: WorkerState): Promise<{ queue: string; request: string } | undefined> {
    const info = worker.info!
    const lists = await jobQueue.waiting.ofUsers(info.preferred)
    const others: WaitingEntry[] = []
    for (const [i, entries] of lists.entries()) {
      for (const entry of entries) {
        const cls = jobQueue.classes.get(entry.queue)
        if (!cls || !canServe(info, cls)) continue
        // The owner's own requests come first, in their order.
        if (i === 0) return entry
        others.push(entry)
      }
    }
    others.sort((a, b) => a.submittedAt - b.submittedAt || (a.request < b.request ? -1 : 1))
    return others[0]
  }

  async function claimFor(worker: WorkerState): Promise<ClaimedJob | undefined | null> {
    if (deps.settled) await deps.settled()
    // Both looks in one round trip: the preferred users' requests, and the heads of the queues.
    const [preferred, heads] = await Promise.all([preferredCandidate(worker), jobQueue.heads(eligibleQueues(worker))])
    if (preferred) {
      // Lift it to the reserved top priority and pop its queue: it is the head now, unless
      // another worker took it first (then whatever we pop is still a job we can serve).
      if (await jobQueue.changePriority(preferred.queue, preferred.request, PRIORITY_PREFERRED)) {
        const claimed = await jobQueue.claim(preferred.queue)
        if (claimed) return claimed
      }
    }
    // Heads this worker failed wait for another worker, when there is one.
    const usable: typeof heads = []
    for (const head of heads) {
      const cls = jobQueue.classes.get(head.queue)
      if (!worker.avoid.has(head.request) || !cls || !await othersCanServe(worker, cls)) usable.push(head)
    }
    if (usable.length === 0) return null
    let best = usable[0]
    for (const head of usable) {
      if (head.priority < best.priority || (head.priority === best.priority && head.request < best.request)) best = head
    }
    return jobQueue.claim(best.queue)
  }

  /** Fills a worker's free slots: its preferred users first, then the best head it can serve. */
  function pumpWorker(worker: WorkerState): Promise<void> {
    return pumping.run(worker, async () => {
      let misses = 0
      while (!closed && !paused && worker.free > 0 && workers.has(worker) && misses < 3) {
        worker.reserved++
        let claimed: ClaimedJob | undefined | null
        try {
          claimed = await claimFor(worker)
        } finally {
          worker.reserved--
        }
        if (claimed === null) break
        if (!claimed) {
          misses++ // raced with another worker for the head: look again
          continue
        }
        await deliver(worker, claimed)
      }
    })
  }

  async function sweep(): Promise<void> {
    if (closed || paused) return
    await jobQueue.closeIdle()
    if (workers.size === 0) return
    await jobQueue.loadClasses()
    const queues = [...jobQueue.classes.keys()]
    if (queues.length === 0) return
    const counts = await jobQueue.counts(queues)
    for (const [queue, n] of counts) if (n > 0) void serveQueue(queue)
  }

  return {
    jobAvailable,
    workerFree(worker) {
      void pumpWorker(worker)
    },
    hasFree(cls) {
      if (closed || paused) return false
      for (const worker of workers) if (worker.free > 0 && worker.info && canServe(worker.info, cls)) return true
      return false
    },
    addAndClaim,
    othersCanServe,
    async isPossible(cls) {
      for (const worker of workers) if (worker.info && worker.moderatorPause === null && canServe(worker.info, cls)) return true
      for (const worker of await registry.online()) {
        if (!worker.paused && canServe(registryCapabilities(worker), cls)) return true
      }
      return false
    },
    onlineWorkers: () => registry.online(),
    recordCompletion(ms) {
      avgJobMs = avgJobMs * 0.9 + ms * 0.1
    },
    eta(position, cls) {
      let servers = 0
      for (const worker of workers) if (worker.info && canServe(worker.info, cls)) servers += worker.info.threads
      return Math.ceil(((position + 1) * avgJobMs) / 1000 / Math.max(servers, 1))
    },
    sweep,
    pause() {
      paused = true
    },
    async close() {
      closed = true
      clearInterval(sweepTimer)
      if (deps.subscriber) await deps.subscriber.quit().catch(() => deps.subscriber!.disconnect())
    },
  }
}
