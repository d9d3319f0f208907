/**
 * The worker API every worker transport calls: `connect` a link, then `announce`, `chunk`,
 * `done`, `fail`, `heartbeat`, and `left` when it goes. Keeps this process's workers (by
 * name: one session per name), their uptime timelines, and their entries in the registry
 * every process reads. Bad calls throw `BrokerError`s; the transport answers them.
 */
import type { ControlBus, WorkerRegistry } from '../cluster/ports.js'
import { UptimeTracker, type UptimeClock } from '../economy/uptime.js'
import type { Metrics } from '../metrics.js'
import type { Announce } from '../protocol/worker.js'
import type { WorkerRecord, WorkerStore } from '../store/ports.js'
import { BrokerError } from '../errors.js'
import type { JobRunner } from './job-runner.js'
import { WorkerState, type WorkerLink } from './worker-link.js'
import { checkWorkerName } from './worker-names.js'
export type { Ready } from './worker-link.js'
import type { Static } from '@sinclair/typebox'

export interface WorkforceDeps {
  workers: WorkerStore
  registry: WorkerRegistry
  control: ControlBus
  runner: JobRunner
  metrics: Metrics
  /** This process's announced workers (shared with dispatch, which keeps its order). */
  online: Set<WorkerState>
  heartbeatMs: number
  clock?: UptimeClock
  /** Finds a user by name (priority users named in an announce). */
  findUser(username: string): Promise<{ id: number } | undefined>
  /** Pays what the given workers' timelines accrued (the uptime payer). */
  payUptime(workers: Iterable<WorkerState>): Promise<unknown>
  /** Dispatch: a worker has free slots. */
  workerFree(worker: WorkerState): void
  /** A moderator suspended this user (as this process last heard). */
  isSuspended(userId: number): boolean
  log(error: unknown): void
}

export interface Workforce {
  /** Starts tracking a new link; the returned state is the handle for every later call. */
  connect(link: WorkerLink): WorkerState
  /** Registers what the worker serves and tells it `ready` through its link; then it gets jobs. */
  announce(worker: WorkerState, message: Static<typeof Announce>): Promise<void>
  chunk(worker: WorkerState, job: string, seq: number, text: string): void
  done(worker: WorkerState, job: string, chunks?: number): void
  fail(worker: WorkerState, job: string, reason?: string): void
  /** Maintenance on: no new jobs (running ones finish); off: jobs again. */
  maintenance(worker: WorkerState, on: boolean): void
  /** The link can take a job again (its `capacity` grew: a polling worker's poll arrived). */
  available(worker: WorkerState): void
  /** The transport observed the worker alive (a pong): uptime accrues. */
  heartbeat(worker: WorkerState): void
  left(worker: WorkerState, reason?: string): void
  /** A moderator changed a worker's trust or pause: applies the row's flags to its session here, if any. */
  moderated(row: Pick<WorkerRecord, 'name' | 'trusted' | 'pausedAt' | 'pausedReason'>): Promise<void>
  /** A moderator suspended a user: that user's workers here are closed. */
  ownerSuspended(userId: number): void
  /** This process's announced workers, in dispatch's round-robin order. */
  readonly online: Set<WorkerState>
  readonly uptime: UptimeTracker
  close(): void
}

export function createWorkforce(deps: WorkforceDeps): Workforce {
  const { metrics, log } = deps
  const { online } = deps
  const byName = new Map<string, WorkerState>()
  const uptime = new UptimeTracker(deps.heartbeatMs, deps.clock)

  /** Ends an older session of the same name held here (a newer one took the name). */
  function replaceLocal(name: string, session: string): void {
    const previous = byName.get(name)
    if (!previous || previous.link.id === session) return
    previous.link.replaced()
    left(previous, 'worker replaced by a new session')
  }
  const offReplaced = deps.control.on('worker_replaced', (message) => replaceLocal(message.name, message.session))

  async function announce(worker: WorkerState, message: Static<typeof Announce>): Promise<void> {
    const principal = worker.link.principal
    const { name } = message
    if (principal.suspended || deps.isSuspended(principal.userId)) throw new BrokerError('user_suspended')
    checkWorkerName(name)
    const row = await deps.workers.register(name, principal.userId, Date.now())
    const unknown: string[] = []
    const preferred = [principal.userId]
    for (const username of message.priority_usernames ?? []) {
      const user = await deps.findUser(username)
      if (user) { if (!preferred.includes(user.id)) preferred.push(user.id) } else unknown.push(username)
    }
    replaceLocal(name, worker.link.id)
    if (worker.link.closed) return
    worker.info = {
      id: row.id, name, modelList: message.models, models: new Set(message.models),
      maxLength: message.max_length, maxContextLength: message.max_context_length,
      threads: message.threads ?? 1, preferred, trusted: row.trusted,
    }
    worker.moderatorPause = row.pausedAt !== null ? (row.pausedReason ?? '') : null
    byName.set(name, worker)
    online.add(worker)
    metrics.workersConnected.set(online.size)
    worker.since = Date.now()
    await join(worker)
    // Other processes end their session of this name, if they hold one.
    void deps.control.publish({ type: 'worker_replaced', name, session: worker.link.id }).catch(log)
    worker.link.ready({ id: message.id, worker_id: row.id, name, unknown_priority_users: unknown })
    if (worker.moderatorPause !== null) worker.link.moderated?.({ paused: true, trusted: row.trusted, reason: worker.moderatorPause })
    deps.workerFree(worker)
  }

  /** Writes the worker's registry entry (again, after a moderator's change). */
  function join(worker: WorkerState): Promise<void> {
    const info = worker.info!
    return deps.registry.join({
      name: info.name, owner: worker.link.principal.username, models: info.modelList, threads: info.threads,
      maxLength: info.maxLength, maxContextLength: info.maxContextLength, session: worker.link.id,
      trusted: info.trusted, paused: worker.moderatorPause !== null, since: worker.since,
    })
  }

  async function moderated(row: Pick<WorkerRecord, 'name' | 'trusted' | 'pausedAt' | 'pausedReason'>): Promise<void> {
    const worker = byName.get(row.name)
    if (!worker?.info || worker.link.closed) return
    const pause = row.pausedAt !== null ? (row.pausedReason ?? '') : null
    if (worker.info.trusted === row.trusted && worker.moderatorPause === pause) return
    worker.info.trusted = row.trusted
    worker.moderatorPause = pause
    worker.link.moderated?.({ paused: pause !== null, trusted: row.trusted, reason: pause })
    await join(worker)
    // Unpaused, or trusted now: there may be jobs it can take.
    deps.workerFree(worker)
  }

  function ownerSuspended(userId: number): void {
    for (const worker of [...byName.values()]) {
      if (worker.link.principal.userId !== userId) continue
      worker.link.suspended()
      left(worker, 'owner suspended by a moderator')
    }
  }

  function left(worker: WorkerState, reason = 'worker disconnected'): void {
    const info = worker.info
    if (info) {
      deps.payUptime([worker]).catch(log)
      // A replaced session's name lives on in its successor: keep that timeline.
      if (byName.get(info.name) === worker) {
        byName.delete(info.name)
        uptime.forget(info.name)
        void deps.registry.leave(info.name, worker.link.id).catch(log)
      }
    }
    if (online.delete(worker)) metrics.workersConnected.set(online.size)
    deps.runner.release(worker, reason)
  }

  return {
    connect: (link) => new WorkerState(link),
    announce,
    chunk: (worker, job, seq, text) => deps.runner.chunk(worker, job, seq, text),
    done: (worker, job, chunks) => deps.runner.done(worker, job, chunks),
    fail: (worker, job, reason) => deps.runner.fail(worker, job, reason),
    maintenance(worker, on) {
      worker.maintenance = on
      if (!on) deps.workerFree(worker)
    },
    available(worker) {
      if (worker.info && !worker.link.closed) deps.workerFree(worker)
    },
    heartbeat(worker) {
      // A worker paused by a moderator earns no uptime: its pongs are not evidence of service.
      if (worker.info && worker.moderatorPause === null) uptime.pong(worker.info.name)
    },
    left,
    moderated,
    ownerSuspended,
    online,
    uptime,
    close: offReplaced,
  }
}
