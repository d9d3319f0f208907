/**
 * What the broker remembers for its charts, kept in bounded form as things happen (never
 * recomputed when a page is viewed): finished jobs and tokens per minute over the last hour
 * and day, queue length per model, each user's balance by the hour, and each worker's and
 * model's recent speed. Every map is capped and drops its least recently updated entry, so
 * made-up model names or many users cannot grow it; every series is a fixed ring
 * (`rollup.ts`). It lives in one process: each broker process charts what it saw.
 */
import { Rollup, type SeriesPoints } from './rollup.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** The sizes of every series: the chart endpoints can never return more than this. */
export const HISTORY_SHAPE = {
  /** One slot per minute over the last hour. */
  hour: { bucketMs: MINUTE, buckets: 60 },
  /** One slot per 5 minutes over the last day. */
  day: { bucketMs: 5 * MINUTE, buckets: 288 },
  /** A balance: one slot per hour over the last week. */
  balance: { bucketMs: HOUR, buckets: 168 },
} as const

export interface HistoryLimits {
  /** Models with a queue series or a speed (default 64). */
  models: number
  /** Users with a balance series (default 2,000). */
  users: number
  /** Workers with a speed (default 1,000). */
  workers: number
}

/** A finished job, as the core reports it. */
export interface JobRecord {
  tokens: number
  /** Generation time, dispatch to settlement, ms. */
  ms: number
  model: string
  worker: string
}

/** Jobs and tokens per minute, over one window. */
export interface ThroughputSeries {
  start: number
  step_s: number
  jobs_per_min: Array<number | null>
  tokens_per_min: Array<number | null>
}

/** A recent speed: tokens per second, weighted toward the last jobs. */
interface Speed {
  tokensPerS: number
  jobs: number
}

/** A Map that forgets its least recently touched entry beyond `cap`. */
function touch<K, V>(map: Map<K, V>, key: K, cap: number, make: () => V): V {
  let value = map.get(key)
  if (value !== undefined) map.delete(key)
  else value = make()
  map.set(key, value)
  while (map.size > cap) map.delete(map.keys().next().value as K)
  return value
}

/** Weight of the newest job in a speed (an exponential moving average). */
const SPEED_WEIGHT = 0.2

function perMinute(points: SeriesPoints): Array<number | null> {
  const minutes = points.step_s / 60
  return points.values.map((v) => (v === null ? 0 : Math.round((v / minutes) * 100) / 100))
}

export class History {
  private readonly limits: HistoryLimits
  private readonly jobs = { hour: new Rollup({ ...HISTORY_SHAPE.hour, mode: 'sum' }), day: new Rollup({ ...HISTORY_SHAPE.day, mode: 'sum' }) }
  private readonly tokens = { hour: new Rollup({ ...HISTORY_SHAPE.hour, mode: 'sum' }), day: new Rollup({ ...HISTORY_SHAPE.day, mode: 'sum' }) }
  private readonly queues = new Map<string, { hour: Rollup; day: Rollup }>()
  private readonly modelTokens = new Map<string, Rollup>()
  private readonly modelSpeeds = new Map<string, Speed>()
  private readonly workerSpeeds = new Map<string, Speed>()
  private readonly balances = new Map<number, Rollup>()

  constructor(limits: Partial<HistoryLimits> = {}) {
    this.limits = { models: 64, users: 2_000, workers: 1_000, ...limits }
  }

  /** A job finished (done or cancelled with text). */
  recordJob(job: JobRecord, at: number): void {
    this.jobs.hour.record(1, at)
    this.jobs.day.record(1, at)
    this.tokens.hour.record(job.tokens, at)
    this.tokens.day.record(job.tokens, at)
    touch(this.modelTokens, job.model, this.limits.models, () => new Rollup({ ...HISTORY_SHAPE.hour, mode: 'sum' })).record(job.tokens, at)
    if (job.tokens > 0 && job.ms > 0) {
      const rate = job.tokens / (job.ms / 1000)
      for (const [map, key, cap] of [[this.modelSpeeds, job.model, this.limits.models], [this.workerSpeeds, job.worker, this.limits.workers]] as const) {
        const speed = touch(map as Map<string, Speed>, key, cap, () => ({ tokensPerS: rate, jobs: 0 }))
        speed.tokensPerS = speed.jobs === 0 ? rate : speed.tokensPerS * (1 - SPEED_WEIGHT) + rate * SPEED_WEIGHT
        speed.jobs++
      }
    }
  }

  /** The waiting requests per model right now (models missing from `waiting` have none). */
  sampleQueues(waiting: Readonly<Record<string, number>>, at: number): void {
    for (const [model, series] of this.queues) {
      if (!(model in waiting)) {
        series.hour.record(0, at)
        series.day.record(0, at)
      }
    }
    for (const [model, n] of Object.entries(waiting)) {
      const series = touch(this.queues, model, this.limits.models, () => ({
        hour: new Rollup({ ...HISTORY_SHAPE.hour, mode: 'max' }), day: new Rollup({ ...HISTORY_SHAPE.day, mode: 'max' }),
      }))
      series.hour.record(n, at)
      series.day.record(n, at)
    }
  }

  /** A user's balance after a change (milli-kudos), if the user has a series (see `seedBalance`). */
  balanceChanged(userId: number, balance: number, at: number): void {
    this.balances.get(userId)?.record(balance, at)
  }

  /** True when the user's balance is followed here. */
  followsBalance(userId: number): boolean {
    return this.balances.has(userId)
  }

  /**
   * Starts following a user's balance from known points (oldest first, milli-kudos) and the
   * balance before them: done once per user, from the ledger, then kept by `balanceChanged`.
   */
  seedBalance(userId: number, before: number, points: ReadonlyArray<{ at: number; balance: number }>): void {
    const series = touch(this.balances, userId, this.limits.users, () => new Rollup({ ...HISTORY_SHAPE.balance, mode: 'last' }))
    series.seed(before)
    for (const point of points) series.record(point.balance, point.at)
  }

  throughput(now: number): { hour: ThroughputSeries; day: ThroughputSeries } {
    const window = (jobs: Rollup, tokens: Rollup): ThroughputSeries => {
      const j = jobs.points(now)
      return { start: j.start, step_s: j.step_s, jobs_per_min: perMinute(j), tokens_per_min: perMinute(tokens.points(now)) }
    }
    return { hour: window(this.jobs.hour, this.tokens.hour), day: window(this.jobs.day, this.tokens.day) }
  }

  /** Queue length per model (the most waiting in each slot), over the hour and the day. */
  queueLengths(now: number): { hour: { start: number; step_s: number; models: Record<string, Array<number | null>> }; day: { start: number; step_s: number; models: Record<string, Array<number | null>> } } {
    const window = (pick: 'hour' | 'day') => {
      const models: Record<string, Array<number | null>> = {}
      let frame = new Rollup({ ...HISTORY_SHAPE[pick], mode: 'max' }).points(now)
      for (const [model, series] of this.queues) {
        const points = series[pick].points(now)
        if (points.values.some((v) => v !== null && v > 0)) models[model] = points.values
        frame = points
      }
      return { start: frame.start, step_s: frame.step_s, models }
    }
    return { hour: window('hour'), day: window('day') }
  }

  /** A user's balance by the hour over the last week (milli-kudos), or undefined when not followed. */
  balance(userId: number, now: number): SeriesPoints | undefined {
    return this.balances.get(userId)?.points(now)
  }

  /** Tokens generated for a model over the last hour. */
  modelTokensLastHour(model: string, now: number): number {
    return this.modelTokens.get(model)?.total(now) ?? 0
  }

  /** Recent tokens per second of a model's jobs, or null before its first job here. */
  modelSpeed(model: string): number | null {
    return this.modelSpeeds.get(model)?.tokensPerS ?? null
  }

  /** Recent tokens per second of a worker, or null before its first job here. */
  workerSpeed(worker: string): number | null {
    return this.workerSpeeds.get(worker)?.tokensPerS ?? null
  }

  /** Entries kept, per map (tests: the caps hold). */
  sizes(): { models: number; users: number; workers: number } {
    return { models: Math.max(this.queues.size, this.modelTokens.size, this.modelSpeeds.size), users: this.balances.size, workers: this.workerSpeeds.size }
  }
}
