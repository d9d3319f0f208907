/**
 * Open connections per key (an address) counted by every broker process in one Redis. Each
 * key is a hash of holder (a process id) -> the slots that process holds; a sorted set gives
 * each holder the moment its liveness lapses, which the holder pushes forward on a timer.
 * A process killed without a goodbye keeps its fields, but once its moment has passed the
 * admission script ignores them and deletes them: its connections stop counting within
 * `ttlMs`. All of it on Redis's clock (TIME), so the processes' own clocks do not matter.
 *
 * A holder that was only slow (a stall longer than `ttlMs`) may have had its fields deleted
 * by another process meanwhile; its next refresh sees that it had lapsed and writes its own
 * counts back, which it always knows locally.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { ClusterKeys } from '../cluster/keys.js'
import { defineScript, runScript } from '../cluster/lua.js'
import type { ConnectionCounter } from './ports.js'

/** Admission (and, with a limit of 0, a count): the live holders' slots, summed. */
const ACQUIRE = defineScript(`
-- Takes a slot for this holder if the live holders' slots are under the limit; drops the
-- fields of holders whose liveness has lapsed.
-- KEYS[1]  the key's hash: holder -> slots held
-- KEYS[2]  the holders' sorted set: holder -> when its liveness lapses (ms, Redis clock)
-- ARGV[1]  this holder's id (always live to itself)
-- ARGV[2]  the limit (0: only count)
-- Returns  {1, slots before} when a slot was taken; {0, slots} when at the limit
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local held = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #held, 2 do
  local live = held[i] == ARGV[1]
  if not live then
    local lapses = redis.call('ZSCORE', KEYS[2], held[i])
    live = lapses ~= false and tonumber(lapses) > now
  end
  if live then
    total = total + tonumber(held[i + 1])
  else
    redis.call('HDEL', KEYS[1], held[i])
  end
end
if total >= tonumber(ARGV[2]) then return {0, total} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return {1, total}
`)

const RELEASE = defineScript(`
-- Gives back one of this holder's slots; the field goes when it reaches zero.
-- KEYS[1]  the key's hash: holder -> slots held
-- ARGV[1]  this holder's id
-- Returns  the holder's slots left
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return left
`)

const REFRESH = defineScript(`
-- Pushes this holder's lapse forward; forgets holders lapsed for a day (their fields are
-- already ignored, and deleted by the next admission that meets them).
-- KEYS[1]  the holders' sorted set
-- ARGV[1]  this holder's id
-- ARGV[2]  the liveness TTL, ms
-- Returns  1 when the holder had lapsed (or is new): its counts may be gone; else 0
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lapses = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400000)
if lapses ~= false and tonumber(lapses) > now then return 0 end
return 1
`)

/** Liveness refresh and TTL unless told otherwise: a dead process's connections count for at most 10 s. */
export const CONNECTION_COUNTER_DEFAULTS = { refreshMs: 2_000, ttlMs: 10_000 } as const

export interface RedisConnectionCounterOptions {
  /** A command connection; the caller owns it. */
  redis: Redis
  keys: ClusterKeys
  /** Slots one key may hold across every process. */
  limit: number
  /** Where a failed background call (a release, a refresh) goes. */
  log(error: unknown): void
  /** This holder's id; a random UUID when omitted. */
  holderId?: string
  /** How often the liveness is refreshed, ms. */
  refreshMs?: number
  /** How long a holder that stopped refreshing still counts, ms. */
  ttlMs?: number
}

export function createRedisConnectionCounter(options: RedisConnectionCounterOptions): ConnectionCounter {
  const { redis, keys, limit, log } = options
  const holder = options.holderId ?? randomUUID()
  const refreshMs = options.refreshMs ?? CONNECTION_COUNTER_DEFAULTS.refreshMs
  const ttlMs = options.ttlMs ?? CONNECTION_COUNTER_DEFAULTS.ttlMs
  // What this process holds: the truth for its own fields, written back after a lapse.
  const mine = new Map<string, number>()
  let closed = false

  async function refresh(): Promise<void> {
    const lapsed = await runScript(redis, REFRESH, [keys.connectionHolders], [holder, ttlMs])
    if (lapsed !== 1 || mine.size === 0) return
    const restore = redis.multi()
    for (const [key, count] of mine) restore.hset(keys.connections(key), holder, count)
    await restore.exec()
  }
  // Sent before any admission on the same connection, so Redis never sees our slots without our liveness.
  void refresh().catch(log)
  const timer = setInterval(() => void refresh().catch(log), refreshMs)
  timer.unref()

  return {
    limit,
    async acquire(key) {
      const [taken] = (await runScript(redis, ACQUIRE, [keys.connections(key), keys.connectionHolders], [holder, limit])) as [number, number]
      if (taken !== 1) return false
      mine.set(key, (mine.get(key) ?? 0) + 1)
      return true
    },
    release(key) {
      const left = (mine.get(key) ?? 1) - 1
      if (left <= 0) mine.delete(key)
      else mine.set(key, left)
      void runScript(redis, RELEASE, [keys.connections(key)], [holder]).catch(log)
    },
    async count(key) {
      const [, total] = (await runScript(redis, ACQUIRE, [keys.connections(key), keys.connectionHolders], [holder, 0])) as [number, number]
      return total
    },
    async close() {
      if (closed) return
      closed = true
      clearInterval(timer)
      // Our connections are closed by now; any slot left is not counted against anyone.
      await redis.zrem(keys.connectionHolders, holder).catch(log)
    },
  }
}
