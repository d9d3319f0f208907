/**
 * The throttle for wrong API keys, per client address (`request.ip`: the TCP peer, or the
 * address a proxy named in TRUST_PROXY forwards). Every key that fails its lookup
 * (`unauthorized`) counts in Redis, so every broker process shares the count; once an address
 * has `BAD_KEYS_PER_MINUTE` in its window, any request from it presenting a key is refused
 * `429 too_many_bad_keys` before the key is looked up, until the window (one minute from the
 * first failure) passes. Requests without a key (anonymous) and other addresses are unaffected.
 * Applied where every door resolves its key: the `preValidation` hook in app.ts (REST, socket
 * upgrades, the AI Horde `apikey` header, the OpenAI bearer key).
 */
import type { Redis } from 'ioredis'
import { BrokerError } from '../errors.js'

const WINDOW_MS = 60_000

/** Counts one failure; the window starts at an address's first. */
const COUNT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

export interface BadKeyThrottle {
  /** Throws `too_many_bad_keys` (details: `retry_after_seconds`) when `ip` is over the limit. */
  check(ip: string): Promise<void>
  /** Counts a failed key lookup from `ip`. */
  failed(ip: string): Promise<void>
}

export function createBadKeyThrottle(redis: Redis, prefix: string, perMinute: number, log: { warn(obj: object, msg: string): void }): BadKeyThrottle {
  const keyOf = (ip: string) => `${prefix}:badkeys:${ip}`
  return {
    async check(ip) {
      let count: string | null
      let ttl: number
      try {
        const replies = await redis.multi().get(keyOf(ip)).pttl(keyOf(ip)).exec()
        count = (replies?.[0]?.[1] as string | null) ?? null
        ttl = Number(replies?.[1]?.[1] ?? -1)
      } catch (error) {
        // Redis down: keys are still checked (a wrong one is still refused), just not throttled.
        log.warn({ err: error }, 'bad-key throttle unavailable')
        return
      }
      if (count !== null && Number(count) >= perMinute) {
        const retryAfter = Math.max(1, Math.ceil((ttl > 0 ? ttl : WINDOW_MS) / 1000))
        throw new BrokerError('too_many_bad_keys', `Too many wrong API keys from this address: try again in ${retryAfter} s`, { retry_after_seconds: retryAfter })
      }
    },
    async failed(ip) {
      try {
        await redis.eval(COUNT, 1, keyOf(ip), WINDOW_MS)
      } catch (error) {
        log.warn({ err: error }, 'bad-key throttle unavailable')
      }
    },
  }
}
