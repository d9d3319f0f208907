/**
 * The horde at a glance, for `GET /v1/status` and the live status page: workers online (all
 * processes, from Redis), waiting requests per model (`*`: any model), recent throughput,
 * top kudos holders. The real `StatusSource` of src/web/status.ts.
 */
import { inArray } from 'drizzle-orm'
import { workers } from '../db/schema.js'
import { topKudos, type StatusSnapshot } from '../web/status.js'
import type { JobQueue } from '../queue/job-queue.js'
import type { OnlineWorker } from './dispatcher.js'
import type { Services } from '../services.js'


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

export function createStatus(services: Services, jobQueue: JobQueue, onlineWorkers: () => Promise<OnlineWorker[]>, throughput: Throughput) {
  const { db, metrics } = services
  return async function snapshot(): Promise<StatusSnapshot> {
    const online = await onlineWorkers()
    const rows = online.length
      ? db.select({ name: workers.name, jobs: workers.jobs, uptimeMs: workers.uptimeMs }).from(workers).where(inArray(workers.name, online.map((w) => w.name))).all()
      : []
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
    return {
      workers: online.map((w) => ({ name: w.name, owner: w.owner, models: w.models, jobs: stats.get(w.name)?.jobs ?? 0, uptime_s: Math.round((stats.get(w.name)?.uptimeMs ?? 0) / 1000) })),
      waiting,
      throughput: throughput.perMinute(),
      top: topKudos(db),
    }
  }
}
