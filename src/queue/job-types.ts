/**
 * The shapes the queue module hands out and takes in, apart from the class that does the
 * work, so the modules around `JobQueue` (held jobs, class queues) can share them.
 */
import type { Job } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Keys } from './keys.js'

/** What a waiting job carries: everything a worker needs, so dispatch reads only Redis. */
export interface JobData {
  request: string
  userId: number
  prompt: string
  models: string[]
  max_length: number
  max_context_length: number
  params: Record<string, unknown>
  submittedAt: number
  classKey: string
  /**
   * Database ids of the workers whose attempt at this job failed (they reported a failure):
   * the job is not offered to them again while another worker can serve it. Kept in the
   * job, in Redis, so it outlives the broker process that saw the failure.
   */
  failedBy?: number[]
}

/** The user of a job from its stored data, if that can be read. */
export function ownerOf(data: string | null | undefined): number | undefined {
  if (!data) return undefined
  try {
    return (JSON.parse(data) as JobData).userId
  } catch {
    return undefined
  }
}

/** A job this process popped for one of its workers, with the lock token that proves it. */
export interface ClaimedJob {
  job: Job<JobData>
  token: string
  queue: string
  /** 1 for the first dispatch, +1 for each restart. */
  attempt: number
}

export interface JobQueueEvents {
  /** A job came back to a queue (stalled, restarted); dispatch should look at it. */
  returned: [queue: string, request: string]
}

export interface JobQueueOptions {
  /** Shared by every class queue, so commands sent on it reach Redis in the order sent. */
  redis: Redis
  keys: Keys
  /** How long a claimed job stays locked without renewal; a dead process's jobs return after this. */
  lockMs: number
  /** Attempts before a job that keeps losing its worker fails for good. */
  maxAttempts: number
}
