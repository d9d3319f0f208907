/**
 * Every Redis key and channel the cluster ports use, built in one place, under the same
 * prefix scheme as src/queue/keys.ts (the registry's two keys are the ones the dispatcher
 * writes today, so both can run against one Redis while the move is under way).
 *
 * A request's stream and its position counter share the hash tag `{request}`: the fan-out
 * script touches both in one call, which Redis Cluster allows only within one slot. The
 * connection counts and their holders' liveness share the tag `{connections}` for the same
 * reason (the admission script reads both).
 */

export interface ClusterKeys {
  /** The prefix every key below starts with. */
  readonly prefix: string
  /** Hash: worker name -> JSON `OnlineWorker` of connected workers (all processes). */
  readonly workers: string
  /** String with a TTL, present while a broker process is alive. */
  process(id: string): string
  /** Stream: a request's kept events, entry ids `<position>-0`. */
  stream(request: string): string
  /** String: the last position given out in a request's stream (outlives trimming). */
  position(request: string): string
  /** Pub/sub channel: a request's live events. */
  events(request: string): string
  /** Pub/sub channel: control messages for every process. */
  readonly control: string
  /** String with a TTL: one token bucket's theoretical arrival time (GCRA), per limiter and key. */
  rate(limiter: string, key: string): string
  /** Hash: holder (process id) -> connections it holds for one key (an address). */
  connections(key: string): string
  /** Sorted set: holder (process id) -> when its liveness lapses, ms on Redis's clock. */
  readonly connectionHolders: string
  /** Hash: worker id -> JSON uptime credit one process observed and has not paid yet. */
  uptimePending(process: string): string
  /** Sorted set: process id -> when its uptime journal's liveness lapses, ms on Redis's clock. */
  readonly uptimeHolders: string
}

export function createClusterKeys(prefix: string): ClusterKeys {
  return {
    prefix,
    workers: `${prefix}:workers`,
    process: (id) => `${prefix}:process:${id}`,
    stream: (request) => `${prefix}:fanout:{${request}}:stream`,
    position: (request) => `${prefix}:fanout:{${request}}:position`,
    events: (request) => `${prefix}:fanout:{${request}}:events`,
    control: `${prefix}:control`,
    rate: (limiter, key) => `${prefix}:limits:rate:${limiter}:${key}`,
    connections: (key) => `${prefix}:limits:{connections}:open:${key}`,
    connectionHolders: `${prefix}:limits:{connections}:holders`,
    uptimePending: (process) => `${prefix}:uptime:pending:${process}`,
    uptimeHolders: `${prefix}:uptime:holders`,
  }
}
