/**
 * Token buckets keyed by caller (a user id, or an address for anonymous use): `rate`
 * tokens per second up to `burst`. In-process; REST submissions use @fastify/rate-limit's
 * Redis store instead, so that they are shared by every broker process.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(private readonly rate: number, private readonly burst: number, private readonly now: () => number = () => performance.now()) {}

  /** Takes a token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const at = this.now()
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((at - bucket.at) / 1000) * this.rate)
    bucket.at = at
    if (this.buckets.size > 100_000) this.sweep(at)
    this.buckets.set(key, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /** Drops full buckets, so memory follows active callers only. */
  private sweep(at: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((at - bucket.at) / 1000) * this.rate >= this.burst) this.buckets.delete(key)
    }
  }
}
