/**
 * The core: one object that every transport calls, assembled from its parts and handed its
 * ports. `generations` serves clients (REST, the client socket), `workforce` serves workers
 * (the worker socket), `status` serves the pages. The core holds no socket and no
 * transaction: it reaches the database through the store port, other processes through the
 * cluster ports, and the queue through the queue module.
 */
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { ControlBus, Fanout, WorkerRegistry } from '../cluster/ports.js'
import type { UptimeJournal } from '../cluster/uptime-journal.js'
import type { Config } from '../config.js'
import type { ModelRegistry } from '../economy/models.js'
import type { UptimeClock } from '../economy/uptime.js'
import type { Metrics } from '../metrics.js'
import type { JobQueue } from '../queue/job-queue.js'
import type { Keys } from '../queue/keys.js'
import { createReprioritizer, type Reprioritizer } from '../queue/reprioritize.js'
import type { BalanceChange, Store } from '../store/ports.js'
import type { StatusSnapshot } from '../protocol/status.js'
import { createDispatcher, type Dispatcher } from './dispatcher.js'
import { createGenerations, type Generations } from './generations.js'
import { createModerationFeed, type ModerationFeed } from './moderation-feed.js'
import { createJobRunner, type FlaggedWorker, type JobRunner } from './job-runner.js'
import { createPositionFeed, type PositionFeed } from './position-feed.js'
import { createRecovery, type Recovery } from './recovery.js'
import { History } from '../history/history.js'
import { createStatus, Throughput, type QueueSummary } from './status.js'
import { createUptimePayer, type UptimePayer } from './uptime-payer.js'
import { createWorkforce, type Workforce } from './workforce.js'
import type { WorkerState } from './worker-link.js'

/** How often the waiting counts are sampled for the queue charts (they are also sampled whenever a page reads them). */
const QUEUE_SAMPLE_MS = 15_000

export interface CoreDeps {
  config: Config
  store: Store
  jobQueue: JobQueue
  keys: Keys
  fanout: Fanout
  control: ControlBus
  registry: WorkerRegistry
  models: ModelRegistry
  metrics: Metrics
  /** The command connection (queue, index, dispatch announcements). */
  redis: Redis
  /** A second connection, in subscriber mode, for dispatch announcements. */
  subscriber: Redis
  log: { warn(fields: object, message: string): void }
  /** Finds a user by name (priority users in an announce). */
  findUser(username: string): Promise<{ id: number } | undefined>
  /** The clock uptime is measured on (tests inject one). */
  clock?: UptimeClock
  /** Wall-clock milliseconds for submission times and ageing (tests inject one). */
  wallClock?: () => number
  /** Where uptime observed but not yet paid survives this process (cluster/uptime-journal.ts). */
  uptimeJournal?: UptimeJournal
}

/** What moderators hear about, as it happens (the admin tools subscribe). */
export interface ModerationEvents {
  /** A worker keeps delivering faster than its model plausibly generates (economy/plausibility.ts). */
  worker_flagged: [FlaggedWorker]
}

export interface Core {
  readonly generations: Generations
  /** Events for moderators: workers flagged by the plausibility bounds. */
  readonly flags: EventEmitter<ModerationEvents>
  readonly workforce: Workforce
  /** Queue positions pushed to the watchers of waiting requests. */
  readonly positions: PositionFeed
  readonly recovery: Recovery
  /** Moderators' decisions as this process applies them (suspensions, worker trust and pause). */
  readonly moderation: ModerationFeed
  status(): Promise<StatusSnapshot>
  /** Requests waiting per model, and the most tokens they ask for. */
  queues(): Promise<QueueSummary>
  /** What the charts show, kept as it happens (bounded). */
  readonly history: History
  // The parts, for tests and benchmarks that look inside.
  readonly dispatcher: Dispatcher
  readonly runner: JobRunner
  readonly reprioritizer: Reprioritizer
  readonly uptimePayer: UptimePayer
  /** Draining: nothing new is accepted. */
  stopAccepting(): void
  /** The start of a drain: no new requests, no new jobs for this process's workers; running jobs go on. */
  drain(): void
  close(): Promise<void>
}

export function createCore(deps: CoreDeps): Core {
  const { config, store, jobQueue, fanout, control, registry, models, metrics } = deps
  const warn = (error: unknown) => deps.log.warn({ err: error }, 'core')
  const wallNow = deps.wallClock ?? Date.now
  let closing = false
  const throughput = new Throughput()
  const history = new History()
  const flags = new EventEmitter<ModerationEvents>()

  const reprioritizer = createReprioritizer({
    jobQueue, ageingBonusPer10s: config.kudos.ageingBonusPer10s, log: warn, now: wallNow,
    balanceOf: async (userId) => (await store.ledger.account(userId))?.balance ?? 0,
    usersWaiting: () => store.requests.usersWaiting(),
  })
  const onBalance = (change: BalanceChange) => {
    reprioritizer.balanceChanged(change.userId, change.balance)
    history.balanceChanged(change.userId, change.balance, change.at)
  }
  store.events.on('change', onBalance)

  // Built in order of need; the few hooks that point back are closures over later parts.
  const online = new Set<WorkerState>()
  const moderation: ModerationFeed = createModerationFeed({
    moderation: store.moderation, workers: store.workers, pollMs: config.moderationPollSeconds * 1000, log: warn,
    workerChanged: (row) => workforce.moderated(row),
    ownerSuspended: (userId) => workforce.ownerSuspended(userId),
    async balanceChanged(userId) {
      const account = await store.ledger.account(userId)
      if (account) reprioritizer.balanceChanged(userId, account.balance)
    },
  })
  const isSuspended = (userId: number) => moderation.isSuspended(userId)
  const dispatcher: Dispatcher = createDispatcher({
    jobQueue, redis: deps.redis, subscriber: deps.subscriber, keys: deps.keys, workers: online, registry,
    deliver: (worker, claimed) => runner.deliver(worker, claimed), log: warn,
    // A payment just made must move the payer's other requests before the next pick.
    settled: () => reprioritizer.idle(),
  })
  const runner: JobRunner = createJobRunner({
    requests: store.requests, jobQueue, fanout, control, models, config, metrics, wallNow, log: warn,
    workerFree: (worker) => dispatcher.workerFree(worker),
    othersCanServe: (worker, cls) => dispatcher.othersCanServe(worker, cls),
    completed(job) {
      throughput.record(job.tokens)
      dispatcher.recordCompletion(job.ms)
      history.recordJob(job, wallNow())
    },
    flagged(worker) {
      deps.log.warn({ worker: worker.name, workerId: worker.workerId, owner: worker.ownerId, model: worker.model, counted: worker.counted, billed: worker.billed, elapsedMs: worker.elapsedMs },
        'worker flagged: its deliveries keep coming faster than its model plausibly generates')
      try {
        flags.emit('worker_flagged', worker)
      } catch (error) {
        warn(error)
      }
    },
  })
  const workforce: Workforce = createWorkforce({
    workers: store.workers, registry, control, runner, metrics, online, heartbeatMs: config.heartbeatSeconds * 1000, clock: deps.clock,
    findUser: deps.findUser, log: warn, isSuspended,
    payUptime: (workers) => uptimePayer.flush(workers),
    workerFree: (worker) => dispatcher.workerFree(worker),
  })
  const uptimePayer = createUptimePayer({
    workers: store.workers, models, tracker: workforce.uptime, kudos: config.kudos, online: () => workforce.online, log: warn,
    journal: deps.uptimeJournal, checkpointMs: config.heartbeatSeconds * 1000,
  })
  const generations = createGenerations({
    requests: store.requests, ledger: store.ledger, jobQueue, dispatcher, runner, fanout, control,
    limits: config.limits, metrics, wallNow, closing: () => closing, isSuspended,
  })
  const positions = createPositionFeed({ fanout, standing: generations.standing, eta: dispatcher.eta, log: warn })
  const recovery = createRecovery({
    requests: store.requests, ledger: store.ledger, jobQueue, fanout, redis: deps.redis, log: deps.log,
    isRunningHere: (request) => runner.running(request) !== undefined,
    requeued: (queues) => { for (const queue of queues) dispatcher.jobAvailable(queue, true) },
    reconcileSeconds: config.reconcileSeconds, requestTtlSeconds: config.limits.requestTtlSeconds,
  })
  const status = createStatus({
    workers: store.workers, ledger: store.ledger, registry, jobQueue, throughput, metrics,
    sampled: (waiting) => history.sampleQueues(waiting, wallNow()),
  })
  // Queue lengths for the charts, also while nobody looks at a page.
  const sampler = setInterval(() => void status.queues().catch(() => { /* Redis away: a gap in the chart */ }), QUEUE_SAMPLE_MS)
  sampler.unref()

  function stopAccepting(): void {
    clearInterval(sampler)
    closing = true
    recovery.stopExpiry()
    positions.stop()
  }

  return {
    generations, flags, workforce, positions, recovery, moderation, status: status.snapshot, queues: status.queues, history, dispatcher, runner, reprioritizer, uptimePayer,
    stopAccepting,
    drain() {
      stopAccepting()
      dispatcher.pause()
    },
    async close() {
      stopAccepting()
      moderation.close()
      recovery.close()
      runner.close()
      workforce.close()
      store.events.off('change', onBalance)
      uptimePayer.close()
      reprioritizer.close()
      await reprioritizer.idle()
      await dispatcher.close()
    },
  }
}
