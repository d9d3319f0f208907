/**
 * Plausible work: the broker pays for what it could have observed, not for what a worker
 * says. Three bounds, each a pure function of what the broker saw:
 * - billed tokens are at most `elapsed × max_tokens_per_second` of the model (`elapsed`: the
 *   broker's own clock between pushing the job and its `done`), rounded down, and at most
 *   `max_length`; an empty delivery bills nothing;
 * - the context bonus counts prompt tokens only up to the request's and the worker's
 *   `max_context_length` and the model's registry limit;
 * - a worker whose deliveries keep hitting the speed bound is flagged for moderators.
 * The registry (models.ts) gives each model its limits; the defaults are below.
 */

/** The bounds of plausible work on one model. */
export interface ModelLimits {
  /** Most tokens per second one job of this model can be generated at. */
  readonly maxTokensPerSecond: number
  /** Most prompt tokens the context bonus counts. */
  readonly maxContextTokens: number
}

/** Prompt tokens the context bonus counts at most, unless the registry says otherwise. */
export const DEFAULT_MAX_CONTEXT_TOKENS = 8192

/**
 * Tokens per second times billions of parameters that honest hardware reaches on one
 * stream: generation is bound by memory bandwidth, and a 3.35 TB/s GPU reading a 4-bit model
 * (half a byte per parameter) per token makes about 6,700/P tokens per second. So 70B: 100,
 * 13B: 538, 8B: 875.
 */
export const TOKENS_PER_SECOND_BILLIONS = 7000

/** The default bound for small models (and for models the registry does not list). */
export const MAX_DEFAULT_TOKENS_PER_SECOND = 1000

/** The default `max_tokens_per_second` of a model of `sizeB` billions (undefined: not listed). */
export function defaultTokensPerSecond(sizeB: number | undefined): number {
  if (sizeB === undefined) return MAX_DEFAULT_TOKENS_PER_SECOND
  return Math.min(MAX_DEFAULT_TOKENS_PER_SECOND, TOKENS_PER_SECOND_BILLIONS / sizeB)
}

export interface Delivery {
  /** Characters relayed. */
  chars: number
  /** The request's `max_length`. */
  maxLength: number
  /** Milliseconds the broker observed between pushing the job and its end. */
  elapsedMs: number
  /** The model's `max_tokens_per_second`. */
  maxTokensPerSecond: number
}

export interface Billed {
  /** Tokens billed: min(counted, plausible). */
  tokens: number
  /** Tokens counted from the text: ceil(chars/4), at most max_length; 0 for no text. */
  counted: number
  /** True when the speed bound cut the count (the delivery was faster than plausible). */
  bounded: boolean
}

/** Tokens a delivery is paid for (see the header). */
export function billedTokens(delivery: Delivery): Billed {
  if (delivery.chars <= 0) return { tokens: 0, counted: 0, bounded: false }
  const counted = Math.min(Math.ceil(delivery.chars / 4), Math.max(delivery.maxLength, 1))
  const plausible = Math.floor((Math.max(delivery.elapsedMs, 0) * delivery.maxTokensPerSecond) / 1000)
  return { tokens: Math.min(counted, plausible), counted, bounded: counted > plausible }
}

/** Prompt tokens the context bonus counts: the prompt's, capped by every limit that applies. */
export function contextTokens(promptTokenCount: number, limits: { request: number; worker: number; model: number }): number {
  return Math.max(1, Math.min(promptTokenCount, limits.request, limits.worker, limits.model))
}

/** Deliveries cut by the speed bound before a worker can be flagged. */
export const SUSPICION_MIN_BOUNDED = 3
/** ... and the share of its jobs they must be (1 in 4). */
export const SUSPICION_SHARE = 4

/**
 * True when a worker with `jobs` settled jobs, `bounded` of them cut by the speed bound,
 * keeps hitting the bound: at least 3 such deliveries, and at least a quarter of its jobs.
 * Honest hardware does not reach the bound; a worker that answers at once hits it every time.
 */
export function suspicious(jobs: number, bounded: number): boolean {
  return bounded >= SUSPICION_MIN_BOUNDED && bounded * SUSPICION_SHARE >= jobs
}
