/**
 * How BullMQ scores a job in a queue's `:prioritized` sorted set (bullmq 6,
 * `commands/includes/getPriorityScore.lua`): `priority * 2^32 + counter`, the counter
 * being the queue's `:pc` key, incremented on every prioritized insert, so jobs pop by
 * priority (lower first) and then in insertion order. A job pushed back by
 * `pushBackJobWithPriority.lua` gets counter 0: first of its priority.
 *
 * Priorities run 1..2,097,151 so that every score stays below 2^53 and is exact as a
 * JavaScript number (and as the double Redis keeps). Decoding and range bounds live here
 * so nothing else multiplies by 2^32.
 */

/** The counter's share of a score: one priority spans this many scores. */
export const PRIORITY_SPAN = 0x100000000

/** Highest priority BullMQ accepts; lower numbers run first. */
export const MAX_PRIORITY = 2_097_151

/** A decoded `:prioritized` score. */
export interface PriorityScore {
  /** The job's priority, 1..MAX_PRIORITY. */
  priority: number
  /** Its place among jobs of that priority (BullMQ's counter modulo 2^32). */
  counter: number
}

/** The score BullMQ gives a job of `priority` inserted when the counter reached `counter`. */
export function encodeScore(priority: number, counter: number): number {
  return priority * PRIORITY_SPAN + (counter % PRIORITY_SPAN)
}

/** Splits a score (a number or the string Redis returns) into priority and counter. */
export function decodeScore(score: number | string): PriorityScore {
  const value = Number(score)
  const priority = Math.floor(value / PRIORITY_SPAN)
  return { priority, counter: value - priority * PRIORITY_SPAN }
}

/** The priority of a score, for callers that need only that. */
export function priorityOfScore(score: number | string): number {
  return Math.floor(Number(score) / PRIORITY_SPAN)
}

/**
 * The highest score of a job that runs before every job of `priority`: ZCOUNT from 0 to
 * this counts the prioritized jobs at a better (lower) priority.
 */
export function maxScoreBetterThan(priority: number): number {
  return priority * PRIORITY_SPAN - 1
}

/**
 * The highest score of a job of `priority` or better: ZCOUNT from 0 to this counts the
 * jobs a job added now at `priority` finds ahead of it (FIFO within a priority).
 */
export function maxScoreAtOrBetter(priority: number): number {
  return maxScoreBetterThan(priority + 1)
}
