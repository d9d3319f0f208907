/**
 * The horde at a glance, for `GET /v1/status` and the live status page: workers online (all
 * processes, from the registry), waiting requests per model (`*`: any model), recent
 * throughput, top kudos holders. The real `StatusSource` of src/web/status.ts.
 */
import type { WorkerRegistry } from '../cluster/ports.js'
import { toKudos } from '../economy/amounts.js'
import type { Metrics } from '../metrics.js'
import type { JobQueue } from '../queue/job-queue.js'
import type { LedgerStore, WorkerStore } from '../store/ports.js'
import { TOP_USERS, type StatusSnapshot } from '../protocol/status.js'

/** Completions over the last minute, in one process. */
export class Throughput {
  private readonly events: Array<{ at: number; tokens: number }> = []

  record(tokens: number, at = Date.now()): void {
    this.events.push({ at, tokens })
    this.trim(at)
  }

  perMinute(at = Date.now()): { jobs_per_min: number; tokens_per_min: number } {
    this.trim(at)
    return { jobs_per_min: this.events.length, tokens_per_min: this.events.reduce((sum, e) => sum + e.tokens, 0) }
  }

  private trim(at: number): void {
    let drop = 0
    while (drop < this.events.length && this.events[drop].at < at - 60_000) drop++
    if (drop) this.events.splice(0, drop)
  }
}

export interface StatusDeps {
  workers: Pick<WorkerStore, 'byNames'>
  ledger: Pick<LedgerStore, 'top'>
  registry: WorkerRegistry
  jobQueue: JobQueue
  throughput: Throughput
  metrics: Pick<Metrics, 'waitingRequests'>
  /** Told the waiting counts whenever they are read (the charts' queue lengths). */
  sampled?(waiting: Readonly<Record<string, number>>): void
}

/** Requests waiting per model (`*`: any model), and the most tokens they may ask for (each class's length tier). */
export interface QueueSummary {
  waiting: Record<string, number>
  tokens: Record<string, number>
}

export interface Status {
  snapshot(): Promise<StatusSnapshot>
  queues(): Promise<QueueSummary>
}

export function createStatus(deps: StatusDeps): Status {
  const { jobQueue, metrics } = deps

  async function queues(): Promise<QueueSummary> {
    await jobQueue.loadClasses()
    const names = [...jobQueue.classes.keys()]
    const counts = names.length ? await jobQueue.counts(names) : new Map<string, number>()
    const waiting: Record<string, number> = {}
    const tokens: Record<string, number> = {}
    for (const [queue, n] of counts) {
      if (n === 0) continue
      const cls = jobQueue.classes.get(queue)!
      for (const model of cls.models.length ? cls.models : ['*']) {
        waiting[model] = (waiting[model] ?? 0) + n
        tokens[model] = (tokens[model] ?? 0) + n * cls.lengthTier
      }
    }
    metrics.waitingRequests.reset()
    for (const [model, n] of Object.entries(waiting)) metrics.waitingRequests.set({ model }, n)
    deps.sampled?.(waiting)
    return { waiting, tokens }
  }

  async function snapshot(): Promise<StatusSnapshot> {
    const online = await deps.registry.online()
    const rows = online.length ? await deps.workers.byNames(online.map((w) => w.name)) : []
    const stats = new Map(rows.map((r) => [r.name, r]))
    const { waiting } = await queues()
    const top = await deps.ledger.top(TOP_USERS)
    const now = Date.now()
    return {
      workers: online.map((w) => ({
        name: w.name, owner: w.owner, models: w.models, jobs: stats.get(w.name)?.jobs ?? 0,
        // Live: from when this session joined, not from the last uptime payment.
        uptime_s: Math.round((w.since ? Math.max(0, now - w.since) : stats.get(w.name)?.uptimeMs ?? 0) / 1000),
        online_since: w.since ?? null,
      })),
      waiting,
      throughput: deps.throughput.perMinute(),
      top: top.map((row) => ({ username: row.username, kudos: toKudos(row.balance) })),
    }
  }

  return { snapshot, queues }
}
