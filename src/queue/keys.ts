/**
 * Every Redis key and channel the queue writes, built in one place. BullMQ builds its
 * own keys under `<prefix>:<queue>:...` (their names, where we read them, come from
 * BullMQ's `QueueKeys` in `bull-keys.ts`); ours live beside them under the same prefix.
 * The cluster's keys (registry, fan-out streams, control channel) are in src/cluster/keys.ts.
 */
import { createHash } from 'node:crypto'

export interface Keys {
  /** BullMQ's prefix for the generation queues. */
  readonly bullPrefix: string
  /** Hash: queue name -> JSON class descriptor, for every class any process has seen. */
  readonly classes: string
  /** Pub/sub channel: a queue name, published when a job was added or returned to it. */
  readonly dispatchChannel: string
  /** Sorted set of a user's waiting requests (member `queue|request`, score = submit time); used only by `waiting-index.ts`. */
  waiting(userId: number): string
  /** The priority bucket a user's waiting requests sit at; used only by `waiting-index.ts`. */
  bucket(userId: number): string
}

export function createKeys(prefix: string): Keys {
  return {
    bullPrefix: `${prefix}:bull`,
    classes: `${prefix}:classes`,
    dispatchChannel: `${prefix}:dispatch`,
    waiting: (userId) => `${prefix}:waiting:${userId}`,
    bucket: (userId) => `${prefix}:bucket:${userId}`,
  }
}

/** BullMQ queue name for a class key: short, stable, and free of `:`. */
export function queueNameFor(classKey: string): string {
  return `gen-${createHash('sha1').update(classKey).digest('hex').slice(0, 16)}`
}
