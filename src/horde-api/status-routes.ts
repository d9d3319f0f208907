/**
 * The horde's state over the v2 API: `GET /status/heartbeat`, `GET /status/models?type=text`,
 * `GET /status/performance`, `GET /workers?type=text` and `GET /workers/{id}`. Workers are
 * those online in any broker process (the registry), socket and polling alike; their
 * counters come from the store. Figures this broker does not measure are left out or 0
 * (docs/horde-api.md lists them).
 */
import type { FastifyInstance } from 'fastify'
import type { OnlineWorker } from '../cluster/ports.js'
import { toKudos } from '../economy/amounts.js'
import { BrokerError } from '../errors.js'
import type { HordeApiContext } from './context.js'
import { aliasOf, workerIdOf, workerUuid } from './ids.js'

/** Only text is served here: asked for image or interrogation workers or models, the answer is empty. */
function isText(type: string | undefined): boolean {
  return type === undefined || type === '' || type === 'text'
}

export function registerStatusRoutes(scope: FastifyInstance, ctx: HordeApiContext): void {
  const { core, services, bridges, jobQueue } = ctx
  const { store, accounts } = services

  /** Waiting jobs and the tokens they may ask for, per model (`*`: any model). */
  async function queued(): Promise<Map<string, { jobs: number; tokens: number }>> {
    await jobQueue.loadClasses()
    const queues = [...jobQueue.classes.keys()]
    const out = new Map<string, { jobs: number; tokens: number }>()
    if (queues.length === 0) return out
    for (const [queue, n] of await jobQueue.counts(queues)) {
      const cls = jobQueue.classes.get(queue)
      if (!cls || n === 0) continue
      for (const model of cls.models.length ? cls.models : ['*']) {
        const row = out.get(model) ?? { jobs: 0, tokens: 0 }
        row.jobs += n
        // The class's length tier: what a request of it may ask for at most.
        row.tokens += n * cls.lengthTier
        out.set(model, row)
      }
    }
    return out
  }

  async function workerViews(filter: (worker: OnlineWorker, id: number) => boolean = () => true) {
    const online = await core.dispatcher.onlineWorkers()
    const rows = online.length ? await store.workers.byNames(online.map((w) => w.name)) : []
    const byName = new Map(rows.map((row) => [row.name, row]))
    const owners = new Map((await accounts.byIds([...new Set(rows.map((r) => r.ownerId))])).map((u) => [u.id, u]))
    const views = []
    for (const worker of online) {
      const row = byName.get(worker.name)
      if (!row || !filter(worker, row.id)) continue
      const link = bridges.byName(worker.name)
      const owner = owners.get(row.ownerId)
      views.push({
        name: worker.name, id: workerUuid(row.id), type: 'text', online: true,
        requests_fulfilled: row.jobs, kudos_rewards: toKudos(row.earned), threads: worker.threads,
        uptime: Math.round(row.uptimeMs / 1000), maintenance_mode: false, info: null,
        nsfw: link?.checkIn.nsfw ?? true, trusted: false, flagged: false, uncompleted_jobs: 0,
        models: worker.models, bridge_agent: link?.checkIn.bridgeAgent ?? 'horde-broker worker socket',
        max_length: worker.maxLength, max_context_length: worker.maxContextLength, tokens_generated: row.tokens,
        ...(owner ? { owner: aliasOf(owner) } : {}),
      })
    }
    return views
  }

  scope.get('/status/heartbeat', async () => {
    const healthy = await store.health().catch(() => false)
    return { message: healthy ? 'OK' : 'DOWN', version: 'horde-broker' }
  })

  scope.get<{ Querystring: { type?: string; min_count?: string; max_count?: string } }>('/status/models', async (request) => {
    if (!isText(request.query.type)) return []
    const [online, waiting] = await Promise.all([core.dispatcher.onlineWorkers(), queued()])
    const rows = new Map<string, { name: string; count: number; performance: number; queued: number; jobs: number; eta: number; type: string }>()
    for (const worker of online) {
      for (const name of worker.models) {
        const row = rows.get(name) ?? { name, count: 0, performance: 0, queued: 0, jobs: 0, eta: 0, type: 'text' }
        row.count += worker.threads
        rows.set(name, row)
      }
    }
    for (const row of rows.values()) {
      const w = waiting.get(row.name)
      if (w) Object.assign(row, { jobs: w.jobs, queued: w.tokens })
      row.eta = core.dispatcher.eta(row.jobs, { queue: '', key: '', models: [row.name], lengthTier: 1, contextTier: 1 })
    }
    const min = Number(request.query.min_count ?? Number.NaN)
    const max = Number(request.query.max_count ?? Number.NaN)
    return [...rows.values()].filter((r) => (Number.isNaN(min) || r.count >= min) && (Number.isNaN(max) || r.count <= max))
  })

  scope.get('/status/performance', async () => {
    const [online, status] = await Promise.all([core.dispatcher.onlineWorkers(), core.status()])
    let jobs = 0
    let tokens = 0
    // Per class, not per model: a request naming two models is one request.
    const counts = await jobQueue.counts([...jobQueue.classes.keys()])
    for (const [queue, n] of counts) {
      jobs += n
      tokens += n * (jobQueue.classes.get(queue)?.lengthTier ?? 0)
    }
    return {
      queued_requests: 0, queued_text_requests: jobs, worker_count: 0, text_worker_count: online.length,
      thread_count: 0, text_thread_count: online.reduce((sum, w) => sum + w.threads, 0),
      queued_megapixelsteps: 0, past_minute_megapixelsteps: 0, queued_forms: 0,
      interrogator_count: 0, interrogator_thread_count: 0,
      queued_tokens: tokens, past_minute_tokens: status.throughput.tokens_per_min,
    }
  })

  scope.get<{ Querystring: { type?: string; name?: string } }>('/workers', async (request) => {
    if (!isText(request.query.type)) return []
    const name = request.query.name?.toLowerCase()
    return workerViews((worker) => name === undefined || worker.name.toLowerCase() === name)
  })

  scope.get<{ Params: { id: string } }>('/workers/:id', async (request) => {
    const wanted = workerIdOf(request.params.id)
    const [found] = wanted === undefined ? [] : await workerViews((_worker, id) => id === wanted)
    if (!found) throw new BrokerError('not_found', `Worker with ID '${request.params.id}' not found.`, { rc: 'WorkerNotFound' })
    return found
  })
}
