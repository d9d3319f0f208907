/**
 * What the pages and the chart endpoints read of the horde, as one port: the workers
 * online (every process), the queues, the kept history, the model registry, an ETA and a
 * cost estimate. `src/broker.ts` fills it from the core; the pages never see the core.
 * `modelRows` and `workerRows` join those reads into the rows the models and workers
 * pages show.
 */
import type { OnlineWorker } from '../cluster/ports.js'
import type { Core } from '../core/core.js'
import { generationReward } from '../economy/rewards.js'
import type { QueueSummary } from '../core/status.js'
import { toKudos } from '../economy/amounts.js'
import type { ModelRegistry } from '../economy/models.js'
import type { History } from '../history/history.js'
import type { WorkerRecord } from '../store/ports.js'

export interface HordeView {
  online(): Promise<OnlineWorker[]>
  queues(): Promise<QueueSummary>
  /** Rough seconds until a request for `model` with `waiting` ahead of it starts (ask only for a model some worker serves). */
  eta(model: string, waiting: number): number
  /** The most kudos a job of `maxLength` tokens would cost: for `model`, or for the dearest model served when null. */
  estimate(model: string | null, maxLength: number, promptTokens: number): Promise<number>
  readonly history: History
  readonly models: ModelRegistry
  /** Wall-clock ms (the broker's, which tests may move). */
  now(): number
}

/** The view over a core (read when called: the broker builds the core after the services). */
export function createHordeView(core: () => Core, models: ModelRegistry, options: { divisor: number; now?: () => number }): HordeView {
  return {
    online: () => core().dispatcher.onlineWorkers(),
    queues: () => core().queues(),
    eta: (model, waiting) => core().dispatcher.eta(waiting, { queue: '', key: '', models: [model], lengthTier: 1, contextTier: 1 }),
    async estimate(model, maxLength, promptTokens) {
      const names = model ? [model] : [...new Set((await core().dispatcher.onlineWorkers()).flatMap((w) => w.models))]
      const costs = names.map((name) => generationReward(maxLength, models.sizeOf(name), promptTokens, options.divisor))
      return costs.length ? Math.max(...costs) : 0
    },
    get history() {
      return core().history
    },
    models,
    now: options.now ?? Date.now,
  }
}

/** A model as the models page and the playground list it. */
export interface ModelPageRow {
  name: string
  registered: boolean
  sizeB: number | null
  workers: number
  threads: number
  waiting: number
  /** The most tokens the waiting requests may ask for. */
  queuedTokens: number
  /** Null when no worker serves it. */
  etaSeconds: number | null
  tokensLastHour: number
  /** Recent tokens per second of its jobs; null before the first job this process saw. */
  tokensPerS: number | null
}

/** Every model some worker serves, busiest first, then the registry's models nobody serves. */
export async function modelRows(view: HordeView): Promise<{ served: ModelPageRow[]; unserved: ModelPageRow[] }> {
  const [online, queues] = await Promise.all([view.online(), view.queues()])
  const now = view.now()
  const rows = new Map<string, ModelPageRow>()
  const row = (name: string): ModelPageRow => {
    let found = rows.get(name)
    if (!found) {
      const size = view.models.sizeOf(name)
      found = {
        name, registered: size !== undefined, sizeB: size ?? null, workers: 0, threads: 0, waiting: queues.waiting[name] ?? 0,
        queuedTokens: queues.tokens[name] ?? 0, etaSeconds: null, tokensLastHour: view.history.modelTokensLastHour(name, now), tokensPerS: view.history.modelSpeed(name),
      }
      rows.set(name, found)
    }
    return found
  }
  for (const name of view.models.names) row(name)
  for (const worker of online) {
    for (const name of worker.models) {
      const r = row(name)
      r.workers++
      r.threads += worker.threads
    }
  }
  const all = [...rows.values()]
  for (const r of all) if (r.workers > 0) r.etaSeconds = view.eta(r.name, r.waiting)
  const served = all.filter((r) => r.workers > 0).sort((a, b) => b.workers - a.workers || b.waiting - a.waiting || a.name.localeCompare(b.name))
  const unserved = all.filter((r) => r.workers === 0).sort((a, b) => b.waiting - a.waiting || a.name.localeCompare(b.name))
  return { served, unserved }
}

/** A worker as the workers page lists it. */
export interface WorkerPageRow {
  name: string
  owner: string
  models: string[]
  maxLength: number
  maxContextLength: number
  threads: number
  /** Recent tokens per second; null before its first job this process saw. */
  tokensPerS: number | null
  jobs: number
  tokens: number
  /** Kudos earned in all (generation and uptime). */
  earned: number
  /** When this session joined, ms since the epoch; null for an entry of an older broker. */
  onlineSince: number | null
  /**
   * Moderation flags (`trusted`, `paused`) once the broker keeps them for workers: an empty
   * list until then. The page shows whatever is here.
   */
  flags: string[]
}

/** Joins the workers online with their stored counters and recent speed. */
export function workerRows(view: HordeView, online: readonly OnlineWorker[], stored: readonly WorkerRecord[]): WorkerPageRow[] {
  const byName = new Map(stored.map((w) => [w.name, w]))
  return online.map((w) => {
    const row = byName.get(w.name)
    const flags = (w as OnlineWorker & { flags?: unknown }).flags
    return {
      name: w.name, owner: w.owner, models: w.models, maxLength: w.maxLength, maxContextLength: w.maxContextLength, threads: w.threads,
      tokensPerS: view.history.workerSpeed(w.name), jobs: row?.jobs ?? 0, tokens: row?.tokens ?? 0, earned: toKudos(row?.earned ?? 0),
      onlineSince: w.since ?? null, flags: Array.isArray(flags) ? flags.filter((f): f is string => typeof f === 'string') : [],
    }
  }).sort((a, b) => b.jobs - a.jobs || a.name.localeCompare(b.name))
}
