/**
 * A worker that keeps failing jobs (a backend down, a wrong backend key) would otherwise
 * take every waiting job and fail it within milliseconds, burning each request's attempts.
 * Two rules, applied when a worker reports a failure: the failed request is not offered to
 * that worker again while another worker can serve it (the job's data names the workers
 * that failed it, in Redis, so this holds across broker processes and restarts;
 * `WorkerState.avoid` is this process's copy, read by dispatch), and after `FAIL_STREAK_LIMIT` failures in a row the worker gets no jobs for a
 * back-off that doubles with each pause (capped), and is told so.
 */
import type { WorkerState } from './worker-link.js'

/** Failures in a row that pause a worker. */
export const FAIL_STREAK_LIMIT = 3
/** The first pause; each further one doubles, up to `PAUSE_MAX_SECONDS`. */
export const PAUSE_BASE_SECONDS = 30
export const PAUSE_MAX_SECONDS = 600
/** Failed requests remembered per worker (oldest forgotten first). */
const AVOID_MAX = 1000

/** Adds a request to the worker's own list of requests it failed. */
export function rememberFailed(worker: WorkerState, request: string): void {
  worker.avoid.add(request)
  if (worker.avoid.size > AVOID_MAX) worker.avoid.delete(worker.avoid.values().next().value!)
}

/** Records a failure; returns the pause in seconds when this one starts a pause, else 0. */
export function recordFailure(worker: WorkerState, request: string, now = performance.now()): number {
  rememberFailed(worker, request)
  worker.failStreak++
  if (worker.failStreak < FAIL_STREAK_LIMIT) return 0
  const seconds = Math.min(PAUSE_MAX_SECONDS, PAUSE_BASE_SECONDS * 2 ** worker.pauses)
  worker.pauses++
  worker.failStreak = 0
  worker.pausedUntil = now + seconds * 1000
  return seconds
}

/** A job finished: the streak and the back-off start over. */
export function recordSuccess(worker: WorkerState, request: string): void {
  worker.failStreak = 0
  worker.pauses = 0
  worker.avoid.delete(request)
}
