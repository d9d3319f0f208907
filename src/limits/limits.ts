/**
 * The per-caller limits the socket edge applies, built from the config: counted in this
 * process (memory), or with `CLUSTER=on` in the shared Redis so that every process sees the
 * same budget. The rates and bursts are chosen here, once, for both backends.
 */
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import type { ClusterKeys } from '../cluster/keys.js'
import { createMemoryConnectionCounter } from './memory-connection-counter.js'
import { createMemoryRateLimiter } from './memory-rate-limiter.js'
import type { ConnectionCounter, RateLimiter } from './ports.js'
import { createRedisConnectionCounter } from './redis-connection-counter.js'
import { createRedisRateLimiter } from './redis-rate-limiter.js'

export interface Limits {
  /** WebSocket connections per client address (`CONNECTIONS_PER_IP`). */
  readonly connections: ConnectionCounter
  /** WebSocket upgrade attempts per client address (`UPGRADES_PER_SECOND`, bursts of twice that), every channel together. */
  readonly upgrades: RateLimiter
  /** Client-socket submissions per user, per address for Anonymous (`SUBMITS_PER_SECOND`). */
  readonly submits: RateLimiter
  close(): Promise<void>
}

export interface SharedLimitsBackend {
  /** A command connection; the caller owns it. */
  redis: Redis
  keys: ClusterKeys
  log(error: unknown): void
}

export function createLimits(config: Config, shared?: SharedLimitsBackend): Limits {
  const { limits } = config
  const upgrades = { rate: limits.upgradesPerSecond, burst: Math.ceil(limits.upgradesPerSecond * 2) }
  const submits = { rate: limits.submitsPerSecond, burst: Math.max(1, Math.ceil(limits.submitsPerSecond)) }
  const parts = shared
    ? {
        connections: createRedisConnectionCounter({ ...shared, limit: limits.connectionsPerIp }),
        upgrades: createRedisRateLimiter({ ...shared, ...upgrades, name: 'upgrades' }),
        submits: createRedisRateLimiter({ ...shared, ...submits, name: 'submits' }),
      }
    : {
        connections: createMemoryConnectionCounter(limits.connectionsPerIp),
        upgrades: createMemoryRateLimiter(upgrades),
        submits: createMemoryRateLimiter(submits),
      }
  return {
    ...parts,
    async close() {
      await Promise.all([parts.connections.close(), parts.upgrades.close(), parts.submits.close()])
    },
  }
}
