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
}

export function createStatus(deps: StatusDeps): () => Promise<StatusSnapshot> {
  const { jobQueue, metrics } = deps
  return async function snapshot(): Promise<StatusSnapshot> {
    const online = await deps.registry.online()
    const rows = online.length ? await deps.workers.byNames(online.map((w) => w.name)) : []
    const stats = new Map(rows.map((r) => [r.name, r]))
    await jobQueue.loadClasses()
    const queues = [...jobQueue.classes.keys()]
    const counts = queues.length ? await jobQueue.counts(queues) : new Map<string, number>()
    const waiting: Record<string, number> = {}
    for (const [queue, n] of counts) {
      if (n === 0) continue
      const cls = jobQueue.classes.get(queue)!
      for (const model of cls.models.length ? cls.models : ['*']) waiting[model] = (waiting[model] ?? 0) + n
    }
    metrics.waitingRequests.reset()
    for (const [model, n] of Object.entries(waiting)) metrics.waitingRequests.set({ model }, n)
    const top = await deps.ledger.top(TOP_USERS)
    return {
      workers: online.map((w) => ({ name: w.name, owner: w.owner, models: w.models, jobs: stats.get(w.name)?.jobs ?? 0, uptime_s: Math.round((stats.get(w.name)?.uptimeMs ?? 0) / 1000) })),
      waiting,
      throughput: deps.throughput.perMinute(),
      top: top.map((row) => ({ username: row.username, kudos: toKudos(row.balance) })),
    }
  }
}
