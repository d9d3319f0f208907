/**
 * `GET /v1/status/models`: the operator's model registry joined with who serves what now, for
 * clients choosing a model and workers checking the names they announce. An ETA is given
 * only for a model some worker serves (otherwise nothing can be promised).
 */
import type { FastifyInstance } from 'fastify'
import type { Core } from '../../core/core.js'
import type { ModelRegistry } from '../../economy/models.js'

/** One row of the answer. */
export interface ModelRow {
  name: string
  /** In the operator's registry (paid by size); false for a name only some worker announces. */
  registered: boolean
  size_b: number | null
  /** Workers online serving it, and their threads together. */
  workers: number
  threads: number
  /** Requests waiting that name it. */
  waiting: number
  /** Rough seconds until a new request for it starts; null when no worker serves it. */
  eta_seconds: number | null
}

export function registerModelRoutes(app: FastifyInstance, core: Core, models: ModelRegistry): void {
  app.get('/v1/status/models', {
    schema: { summary: 'Registered models and the models online: workers, threads, waiting requests, a rough ETA', tags: ['status'] },
  }, async () => {
    const [online, status] = await Promise.all([core.dispatcher.onlineWorkers(), core.status()])
    const rows = new Map<string, ModelRow>()
    const row = (name: string): ModelRow => {
      let found = rows.get(name)
      if (!found) {
        const size = models.sizeOf(name)
        found = { name, registered: size !== undefined, size_b: size ?? null, workers: 0, threads: 0, waiting: 0, eta_seconds: null }
        rows.set(name, found)
      }
      return found
    }
    for (const name of models.names) row(name)
    for (const worker of online) for (const name of worker.models) { const r = row(name); r.workers++; r.threads += worker.threads }
    for (const [name, n] of Object.entries(status.waiting)) if (name !== '*') row(name).waiting += n
    for (const r of rows.values()) {
      if (r.workers === 0) continue
      r.eta_seconds = core.dispatcher.eta(r.waiting, { queue: '', key: '', models: [r.name], lengthTier: 1, contextTier: 1 })
    }
    return { models: [...rows.values()].sort((a, b) => b.workers - a.workers || a.name.localeCompare(b.name)) }
  })
}
