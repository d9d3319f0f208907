/**
 * The rate limiter of one process: the in-memory token buckets (src/gateway/token-bucket.ts),
 * behind the port. No I/O: a decision costs a map lookup and a little arithmetic.
 */
import { KeyedTokenBuckets, type TokenBucketOptions } from '../gateway/token-bucket.js'
import type { RateLimiter } from './ports.js'

export function createMemoryRateLimiter(options: TokenBucketOptions, now?: () => number): RateLimiter {
  const buckets = new KeyedTokenBuckets<string>(options, now)
  return {
    take: (key) => buckets.take(key),
    async close() {},
  }
}
