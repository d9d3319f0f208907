/**
 * Reads of BullMQ's waiting state straight from its Redis keys, each in one round trip
 * over any number of queues: BullMQ's own getters take one round trip per queue and per
 * state, and dispatch and positions ask across every class at once.
 *
 * What they rely on, from bullmq 6's scripts: priority-0 jobs sit in the `:wait` list and
 * are popped (from its right end) before any job in `:prioritized`; prioritized jobs pop
 * by score (see `score.ts`). A job at priority p therefore has ahead of it, in its own
 * queue, every plain job and every prioritized job of a lower score, and in the other
 * queues every plain job and every prioritized job of a better priority (a worker serving
 * several classes takes the best head across them).
 */
import type { Redis } from 'ioredis'
import type { BullKeys } from './bull-keys.js'
import { maxScoreAtOrBetter, maxScoreBetterThan, priorityOfScore } from './score.js'

/** The job a queue pops next. */
export interface Head {
  queue: string
  request: string
  /** 0 for a job on the plain wait list, else its BullMQ priority. */
  priority: number
}

/** Where the reads go: the shared connection and BullMQ's key names. */
export interface QueueReadContext {
  redis: Redis
  bull: BullKeys
}

function count(result: [Error | null, unknown] | undefined): number {
  return Number(result?.[1] ?? 0)
}

/** For each queue: does it hold any job, waiting or active? */
export async function busyQueues({ redis, bull }: QueueReadContext, queues: readonly string[]): Promise<boolean[]> {
  const pipeline = redis.pipeline()
  for (const name of queues) pipeline.llen(bull.wait(name)).zcard(bull.prioritized(name)).llen(bull.active(name))
  const results = (await pipeline.exec()) ?? []
  return queues.map((_, i) => [0, 1, 2].some((k) => count(results[3 * i + k]) > 0))
}

/** Waiting jobs per queue (plain + prioritized). */
export async function waitingCounts({ redis, bull }: QueueReadContext, queues: readonly string[]): Promise<Map<string, number>> {
  const pipeline = redis.pipeline()
  for (const name of queues) pipeline.llen(bull.wait(name)).zcard(bull.prioritized(name))
  const results = (await pipeline.exec()) ?? []
  const counts = new Map<string, number>()
  queues.forEach((name, i) => counts.set(name, count(results[2 * i]) + count(results[2 * i + 1])))
  return counts
}

/** The next job of each queue that has one (request ids sort by submission time, which breaks ties across queues). */
export async function queueHeads({ redis, bull }: QueueReadContext, queues: readonly string[]): Promise<Head[]> {
  if (queues.length === 0) return []
  const pipeline = redis.pipeline()
  for (const name of queues) pipeline.lrange(bull.wait(name), '-1', '-1').zrange(bull.prioritized(name), '0', '0', 'WITHSCORES')
  const results = (await pipeline.exec()) ?? []
  const heads: Head[] = []
  queues.forEach((queue, i) => {
    const plain = results[2 * i]?.[1] as string[] | undefined
    const prioritized = results[2 * i + 1]?.[1] as string[] | undefined
    if (plain && plain.length) heads.push({ queue, request: plain[0], priority: 0 })
    else if (prioritized && prioritized.length) heads.push({ queue, request: prioritized[0], priority: priorityOfScore(prioritized[1]) })
  })
  return heads
}

/** Queues the counts of the jobs that other queues hold ahead of any job at `priority`. */
function aheadElsewhere(pipeline: ReturnType<Redis['pipeline']>, bull: BullKeys, others: readonly string[], priority: number): void {
  for (const name of others) pipeline.llen(bull.wait(name))
  for (const name of others) pipeline.zcount(bull.prioritized(name), '0', String(maxScoreBetterThan(priority)))
}

/**
 * Jobs a job added now to `queue` at `priority` would find ahead of it, across `queue`
 * and `others`. Callers send it before the add on the same connection, so Redis counts
 * the queues as the new job finds them.
 */
export async function aheadOfNew({ redis, bull }: QueueReadContext, queue: string, others: readonly string[], priority: number): Promise<number> {
  const pipeline = redis.pipeline()
  pipeline.zcount(bull.prioritized(queue), '0', String(maxScoreAtOrBetter(priority)))
  pipeline.llen(bull.wait(queue))
  aheadElsewhere(pipeline, bull, others, priority)
  const results = (await pipeline.exec()) ?? []
  return results.reduce((sum, result) => sum + count(result), 0)
}

/** Jobs ahead of a waiting prioritized request, or null when it is not waiting prioritized. */
export async function positionOf({ redis, bull }: QueueReadContext, queue: string, request: string, others: readonly string[], priority: number): Promise<number | null> {
  const pipeline = redis.pipeline()
  pipeline.zrank(bull.prioritized(queue), request)
  pipeline.llen(bull.wait(queue))
  aheadElsewhere(pipeline, bull, others, priority)
  const results = (await pipeline.exec()) ?? []
  const rank = results[0]?.[1]
  if (rank === null || rank === undefined) return null
  return results.reduce((sum, result) => sum + count(result), 0)
}

/** Which of these requests have a job in Redis (waiting, running or about to be removed). */
export async function jobsExist({ redis, bull }: QueueReadContext, items: ReadonlyArray<{ queue: string; request: string }>): Promise<boolean[]> {
  if (items.length === 0) return []
  const pipeline = redis.pipeline()
  for (const { queue, request } of items) pipeline.exists(bull.job(queue, request))
  const results = (await pipeline.exec()) ?? []
  return results.map(([error, n]) => !error && Number(n) > 0)
}
