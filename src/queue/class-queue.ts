/**
 * One request class's BullMQ pair: the `Queue` jobs are added to, and a `Worker` with no
 * processor that the broker drives by hand (non-blocking `getNextJob` when it has a free
 * volunteer for the class). The fetcher also runs BullMQ's stalled check, so every process
 * that has a class open helps bring back the jobs of a process that died.
 *
 * Both run on the process's one shared connection: a class costs no Redis connection, so
 * requests for many classes (made-up model names, say) cannot use up Redis's clients. A
 * BullMQ `Worker` opens a connection of its own for blocking fetches; the fetcher never
 * blocks, so it is built without one.
 */
import { createRedisBackend, Queue, Worker, type BackendFactory, type RedisQueueBackend } from 'bullmq'
import type { RequestClass } from './classes.js'
import type { JobData, JobQueueOptions } from './job-types.js'

/** An open class: its queue, its fetcher, and when it was last used. */
export interface ClassQueue {
  cls: RequestClass
  queue: Queue<JobData>
  fetcher: Worker<JobData>
  /** Monotonic ms of the last add or claim, for closing idle queues. */
  usedAt: number
}

/** BullMQ's Redis backend on the given connection, with no dedicated blocking connection. */
const withoutBlockingConnection: BackendFactory<RedisQueueBackend> = (name, opts) => createRedisBackend(name, opts)

/** Opens a class's queue and fetcher under BullMQ's `prefix`; `onStalled` hears of each job the stalled check returns. */
export function openClassQueue(cls: RequestClass, prefix: string, options: JobQueueOptions, onStalled: (jobId: string) => void): ClassQueue {
  const queue = new Queue<JobData>(cls.queue, { connection: options.redis, prefix })
  const fetcher = new Worker<JobData>(cls.queue, null, {
    connection: options.redis,
    prefix,
    autorun: false,
    lockDuration: options.lockMs,
    // A job moves back at the first pass after its lock expired (at most one lock after its
    // process died, since locks are renewed every third of one): a pass every quarter lock
    // brings it back within 1.25 locks, where passes one lock apart took up to two.
    stalledInterval: Math.max(100, Math.round(options.lockMs / 4)),
    maxStalledCount: options.maxAttempts,
  }, withoutBlockingConnection)
  fetcher.on('error', () => { /* connection errors surface through /health */ })
  fetcher.on('stalled', onStalled)
  void fetcher.startStalledCheckTimer().catch(() => {})
  return { cls, queue, fetcher, usedAt: performance.now() }
}

/** Closes a class's fetcher and queue (the shared connection stays open), ignoring errors of a connection gone. */
export async function closeClassQueue({ queue, fetcher }: ClassQueue): Promise<void> {
  await fetcher.close(true).catch(() => {})
  await queue.close().catch(() => {})
}
