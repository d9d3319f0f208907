/**
 * Reads of BullMQ's waiting state straight from its Redis keys, each in one round trip
 * over any number of queues: BullMQ's own getters take one round trip per queue and per
 * state, and dispatch and positions ask across every class at once.
 *
 * What they rely on, from bullmq 6's scripts: priority-0 jobs sit in the `:wait` list and
 * are popped (from its right end) before any job in `:prioritized`; prioritized jobs pop
 * by score (see `score.ts`). A job at priority p therefore has ahead of it, in its own
 * queue, every plain job and every prioritized job of a lower score, and in the other
 * queues every plain job, every prioritized job of a better priority, and every job of the
 * same priority submitted before it: a worker serving several classes takes the best head
 * across them, and breaks a tie of priorities by request id, which sorts by submission time.
 */
import type { Redis } from 'ioredis'
import { defineScript, runScript } from '../cluster/lua.js'
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

/**
 * Jobs a job added now to `queue` at `priority` would find ahead of it, across `queue`
 * and `others`: in the other queues every job of its priority too, since all of them were
 * submitted before it. Callers send it before the add on the same connection, so Redis
 * counts the queues as the new job finds them.
 */
export async function aheadOfNew({ redis, bull }: QueueReadContext, queue: string, others: readonly string[], priority: number): Promise<number> {
  const pipeline = redis.pipeline()
  const atOrBetter = String(maxScoreAtOrBetter(priority))
  pipeline.zcount(bull.prioritized(queue), '0', atOrBetter)
  pipeline.llen(bull.wait(queue))
  for (const name of others) pipeline.llen(bull.wait(name)).zcount(bull.prioritized(name), '0', atOrBetter)
  const results = (await pipeline.exec()) ?? []
  return results.reduce((sum, result) => sum + count(result), 0)
}

/**
 * The position of a waiting prioritized job, in one script so the queues are read at one
 * instant. Ties of priority across queues go to the earlier request id (the dispatcher's
 * rule), and only Redis can compare the ids without sending them all over: the cost is one
 * step per job of the same priority in the other queues.
 */
const POSITION = defineScript(`
-- Counts the jobs ahead of a waiting prioritized job, across its queue and the others.
-- KEYS[1]          its queue's :prioritized sorted set
-- KEYS[2]          its queue's :wait list
-- KEYS[3..2+n]     the other queues' :wait lists
-- KEYS[3+n..2+2n]  the other queues' :prioritized sorted sets, in the same order
-- ARGV[1]          the request id (also its job id)
-- ARGV[2]          the highest score of a better priority than the job's
-- ARGV[3]          the highest score of the job's priority
-- Returns          -1 when the job is not in KEYS[1]; otherwise the jobs ahead of it
-- (Lua compares strings with strcoll; request ids are lower-case base 36 and hex of one
-- length, which every collation orders as bytes.)
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return -1 end
local ahead = rank + redis.call('LLEN', KEYS[2])
local n = (#KEYS - 2) / 2
for i = 1, n do
  local prioritized = KEYS[2 + n + i]
  ahead = ahead + redis.call('LLEN', KEYS[2 + i]) + redis.call('ZCOUNT', prioritized, '0', ARGV[2])
  local same = redis.call('ZRANGEBYSCORE', prioritized, '(' .. ARGV[2], ARGV[3])
  for _, member in ipairs(same) do
    if member < ARGV[1] then ahead = ahead + 1 end
  end
end
return ahead
`)

/** Jobs ahead of a waiting prioritized request, or null when it is not waiting prioritized. */
export async function positionOf({ redis, bull }: QueueReadContext, queue: string, request: string, others: readonly string[], priority: number): Promise<number | null> {
  const keys = [bull.prioritized(queue), bull.wait(queue), ...others.map((name) => bull.wait(name)), ...others.map((name) => bull.prioritized(name))]
  const ahead = Number(await runScript(redis, POSITION, keys, [request, String(maxScoreBetterThan(priority)), String(maxScoreAtOrBetter(priority))]))
  return ahead < 0 ? null : ahead
}

/** Which of these requests have a job in Redis (waiting, running or about to be removed). */
export async function jobsExist({ redis, bull }: QueueReadContext, items: ReadonlyArray<{ queue: string; request: string }>): Promise<boolean[]> {
  if (items.length === 0) return []
  const pipeline = redis.pipeline()
  for (const { queue, request } of items) pipeline.exists(bull.job(queue, request))
  const results = (await pipeline.exec()) ?? []
  return results.map(([error, n]) => !error && Number(n) > 0)
}
