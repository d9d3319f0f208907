/**
 * The rate limiter shared by every broker process: GCRA (the generic cell rate algorithm) in
 * one Lua script, so that a decision is one EVALSHA round trip and two processes can never
 * both take the last token. A bucket is one string, its theoretical arrival time (TAT): the
 * moment it would be full again. It is the memory bucket's arithmetic in another form: with
 * an emission interval T = 1/rate, the tokens held at `now` are `burst - (TAT - now) / T`, so
 * "at least one token" is `TAT - now <= (burst - 1) T`, and a refused caller waits
 * `TAT - now - (burst - 1) T`. The key expires when the bucket is full again, which is what
 * the memory buckets' sweep does. The clock is Redis's (TIME), so processes on machines
 * whose clocks disagree still share one bucket.
 */
import type { Redis } from 'ioredis'
import type { TokenBucketOptions } from '../gateway/token-bucket.js'
import type { ClusterKeys } from '../cluster/keys.js'
import { defineScript, runScript } from '../cluster/lua.js'
import type { RateLimiter } from './ports.js'

/** One token from a GCRA bucket, on Redis's clock, in microseconds (exact in a double). */
const TAKE = defineScript(`
-- Takes one token from a bucket kept as its theoretical arrival time (TAT).
-- KEYS[1]  the bucket: a string, the TAT in microseconds on Redis's clock; absent = full
-- ARGV[1]  emission interval: microseconds per token (1e6 / rate)
-- ARGV[2]  burst: most tokens the bucket holds
-- Returns  {1, 0} when a token was taken; {0, ms until one is back} when refused (nothing changed)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local over = (tat - now) - (burst - 1) * interval
if over > 0 then
  return {0, math.ceil(over / 1000)}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
return {1, 0}
`)

export interface RedisRateLimiterOptions extends TokenBucketOptions {
  /** A command connection; the caller owns it. */
  redis: Redis
  keys: ClusterKeys
  /** Names the limiter's buckets (`upgrades`, `submits`): limiters with other rates do not share keys. */
  name: string
}

export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  const { redis, keys, name, rate, burst } = options
  const interval = 1e6 / rate
  return {
    async take(key) {
      const [ok, retryAfterMs] = (await runScript(redis, TAKE, [keys.rate(name, key)], [interval, burst])) as [number, number]
      return { ok: ok === 1, retryAfterMs }
    },
    async close() {},
  }
}
