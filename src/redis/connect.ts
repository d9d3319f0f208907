/**
 * Finds a Redis for the broker: REDIS_URL when set; else one already listening on
 * 127.0.0.1:6379; else a private redis-server under the data directory, stopped on shutdown.
 */
import path from 'node:path'
import { Redis } from 'ioredis'
import { REDIS_INSTALL_HINT, redisAnswers, redisServerAvailable, startRedisServer, type RedisServer } from './redis-server.js'

export interface RedisTarget {
  url: string
  /** Set when the broker started its own server; stop it on shutdown. */
  owned: RedisServer | null
  /** How it was found, for the start-up log. */
  source: 'REDIS_URL' | 'local' | 'private'
}

export class RedisUnavailableError extends Error {}

export async function findRedis(redisUrl: string | undefined, dataDir: string): Promise<RedisTarget> {
  if (redisUrl) return { url: redisUrl, owned: null, source: 'REDIS_URL' }
  if (await redisAnswers('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', owned: null, source: 'local' }
  if (!redisServerAvailable()) {
    throw new RedisUnavailableError(`No Redis: REDIS_URL is not set, nothing answers on 127.0.0.1:6379, and redis-server is not on PATH. ${REDIS_INSTALL_HINT}`)
  }
  const owned = await startRedisServer({ dir: path.join(dataDir, 'redis') })
  return { url: owned.url, owned, source: 'private' }
}

/** A client for commands; BullMQ needs `maxRetriesPerRequest: null` on connections it blocks on. */
export function createRedis(url: string, name: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, connectionName: name, lazyConnect: false })
}
