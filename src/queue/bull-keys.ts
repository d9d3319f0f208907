/**
 * The names of BullMQ's own Redis keys, for the few reads the broker makes straight from
 * Redis (queue lengths, heads, positions) because BullMQ has no one-round-trip call for
 * them. The names come from BullMQ's exported `QueueKeys`, the same helper its `Queue`
 * and `Worker` use, so they cannot drift from what BullMQ's scripts write; this module
 * only gives the handful we read a name, so no caller spells a BullMQ key by hand.
 */
import { QueueKeys } from 'bullmq'

/** BullMQ's keys for the queues under one prefix. */
export interface BullKeys {
  /** The prefix every queue's keys sit under (what `Queue`/`Worker` are given). */
  readonly prefix: string
  /** List of priority-0 waiting job ids; BullMQ pops its right end first. */
  wait(queue: string): string
  /** Sorted set of prioritized waiting job ids, scored as in `score.ts`. */
  prioritized(queue: string): string
  /** List of the ids of jobs held by some worker. */
  active(queue: string): string
  /** Hash of one job (its data, options, attempts), present while BullMQ knows the job. */
  job(queue: string, id: string): string
}

/** BullMQ's key names under `prefix`, built by BullMQ's own `QueueKeys`. */
export function createBullKeys(prefix: string): BullKeys {
  const bull = new QueueKeys(prefix)
  return {
    prefix,
    wait: (queue) => bull.toKey(queue, 'wait'),
    prioritized: (queue) => bull.toKey(queue, 'prioritized'),
    active: (queue) => bull.toKey(queue, 'active'),
    // A job's hash is keyed by its id where the other keys have their type.
    job: (queue, id) => bull.toKey(queue, id),
  }
}
