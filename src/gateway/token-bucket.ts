/**
 * Token buckets keyed by caller (an API key, a user, an address): `rate` tokens a second,
 * up to `burst`; each command, submission or upgrade takes one. Pure arithmetic on a clock that is handed in, so tests pin it.
 */

export interface RateDecision {
  ok: boolean
  /** When refused: milliseconds until one token is back. */
  retryAfterMs: number
}

export interface TokenBucketOptions {
  /** Tokens added per second. */
  rate: number
  /** Most tokens the bucket holds (and what a new bucket starts with). */
  burst: number
}

interface Bucket {
  tokens: number
  /** Clock reading of the last refill, milliseconds. */
  at: number
}

/**
 * Buckets by key. A bucket that has refilled to `burst` is the same as no bucket, so
 * `sweep` forgets those: memory follows recent activity, not every key ever seen.
 */
export class KeyedTokenBuckets<K> {
  private readonly buckets = new Map<K, Bucket>()

  constructor(private readonly options: TokenBucketOptions, private readonly now: () => number = () => performance.now()) {}

  /** Takes one token for `key`, or says how long to wait for one. */
  take(key: K): RateDecision {
    // Keys that come and go (addresses) must not grow the map without end.
    if (this.buckets.size > 100_000) this.sweep()
    const at = this.now()
    const bucket = this.refilled(key, at)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return { ok: true, retryAfterMs: 0 }
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) / this.options.rate) * 1000) }
  }

  /** Forgets buckets that are full again. */
  sweep(): void {
    const at = this.now()
    for (const key of this.buckets.keys()) {
      if (this.refilled(key, at).tokens >= this.options.burst) this.buckets.delete(key)
    }
  }

  get size(): number {
    return this.buckets.size
  }

  private refilled(key: K, at: number): Bucket {
    let bucket = this.buckets.get(key)
    if (!bucket) {
      bucket = { tokens: this.options.burst, at }
      this.buckets.set(key, bucket)
      return bucket
    }
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + ((at - bucket.at) / 1000) * this.options.rate)
    bucket.at = at
    return bucket
  }
}
