/**
 * The limit ports: what a per-caller limit needs, whoever counts. One process counts in
 * memory (`memory-rate-limiter.ts`, `memory-connection-counter.ts`); with `CLUSTER=on` every
 * process counts in one Redis (`redis-rate-limiter.ts`, `redis-connection-counter.ts`), so an
 * address or a user has one budget across the horde, wherever its sockets land. Both pairs
 * pass one contract test (test/limits-contract.test.ts).
 *
 * - `RateLimiter`: a token bucket per key (`rate` a second, up to `burst`): upgrades per
 *   address, socket submissions per user.
 * - `ConnectionCounter`: open things per key, up to a limit: WebSocket connections per address.
 */
import type { RateDecision } from '../gateway/token-bucket.js'

export type { RateDecision }

/**
 * The memory implementations answer synchronously, so that a caller on the hot path can skip
 * the `await` (and its microtask) when there is nothing to wait for: see `isPending`.
 */
export type MaybePromise<T> = T | Promise<T>

/** The value itself when it is not a promise; for callers that want no extra turn. */
export function isPending<T>(value: MaybePromise<T>): value is Promise<T> {
  return value instanceof Promise
}

export interface RateLimiter {
  /** Takes one token for `key`, or says how long until one is back. */
  take(key: string): MaybePromise<RateDecision>
  close(): Promise<void>
}

export interface ConnectionCounter {
  /** The most open slots one key may hold. */
  readonly limit: number
  /** Takes a slot for `key`: true when it was under the limit, false (nothing taken) when not. */
  acquire(key: string): MaybePromise<boolean>
  /** Gives back a slot that `acquire` took. Never throws: a failure is logged. */
  release(key: string): void
  /** Slots held for `key`, by every live holder (tests, diagnostics). */
  count(key: string): Promise<number>
  close(): Promise<void>
}
