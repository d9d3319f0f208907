/**
 * Recovery: the database knows every accepted request, Redis may not. Reconciliation queues
 * again every accepted, unfinished request that Redis lost (it restarted without its last
 * writes, or was flushed), at its owner's current priority; expiry ends requests no worker
 * took in time. A request is queued under its id, so one still there is never queued twice,
 * and one running on a worker of ours is left alone.
 */
import type { Redis } from 'ioredis'
import type { Fanout } from '../cluster/ports.js'
import { priorityForBalance } from '../economy/priority.js'
import type { JobQueue } from '../queue/job-queue.js'
import type { LedgerStore, RequestStore } from '../store/ports.js'
import { Coalescer } from '../util/coalescer.js'
import { failedEvent } from './events.js'
import { classOfRecord } from './generations.js'

export interface RecoveryDeps {
  requests: RequestStore
  ledger: Pick<LedgerStore, 'account'>
  jobQueue: JobQueue
  fanout: Fanout
  /** The connection whose reconnects mean Redis may have lost writes. */
  redis: Redis
  isRunningHere(request: string): boolean
  /** Jobs were queued again in these queues: dispatch should look. */
  requeued(queues: Iterable<string>): void
  reconcileSeconds: number
  requestTtlSeconds: number
  log: { warn(fields: object, message: string): void }
}

export interface Recovery {
  /** One reconciliation pass (coalesced: a call during a pass shares it). Returns requests queued again. */
  reconcile(): Promise<number>
  /** Ends requests older than the TTL that are still waiting. Returns how many. */
  expireOld(now?: number): Promise<number>
  /** Stops expiring (draining: nothing new is taken, nothing old is ended). */
  stopExpiry(): void
  close(): void
}

export function createRecovery(deps: RecoveryDeps): Recovery {
  const { requests, jobQueue, redis } = deps
  const warn = (error: unknown) => deps.log.warn({ err: error }, 'recovery')

  async function reconcileOnce(): Promise<number> {
    let requeued = 0
    let after = ''
    const touched = new Set<string>()
    for (;;) {
      const rows = await requests.waitingAfter(after, 1000)
      if (rows.length === 0) break
      after = rows[rows.length - 1].id
      const candidates = rows.filter((row) => !deps.isRunningHere(row.id)).map((row) => ({ row, cls: classOfRecord(row) }))
      const present = await jobQueue.exists(candidates.map((c) => ({ queue: c.cls.queue, request: c.row.id })))
      for (let i = 0; i < candidates.length; i++) {
        const { row, cls } = candidates[i]
        // Open the class even when Redis still holds the job: after a flush the registry may
        // not name it, and a queue this process never opened is neither served nor checked for stalls.
        if (await jobQueue.ensureClass(cls)) touched.add(cls.queue)
        if (present[i]) continue
        const priority = priorityForBalance((await deps.ledger.account(row.userId))?.balance ?? 0)
        await jobQueue.add(cls, {
          request: row.id, userId: row.userId, prompt: row.prompt, models: cls.models,
          max_length: row.params.max_length, max_context_length: row.params.max_context_length,
          params: row.params.params ?? {}, submittedAt: row.createdAt, classKey: cls.key,
        }, priority)
        touched.add(cls.queue)
        requeued++
      }
    }
    await jobQueue.registerClasses()
    deps.requeued(touched)
    if (requeued > 0) deps.log.warn({ requeued }, 'requests missing from Redis were queued again')
    return requeued
  }

  // A call during a pass shares that pass and its count.
  const reconciling = new Coalescer<'reconcile'>({ onError: warn })
  const reconcile = () => reconciling.join('reconcile', reconcileOnce)
  const reconcileTimer = setInterval(() => void reconcile().catch(warn), deps.reconcileSeconds * 1000)
  reconcileTimer.unref()

  // After Redis comes back (restarted, perhaps without its last writes), look at once.
  let redisWasDown = false
  const onRedisClose = () => { redisWasDown = true }
  const onRedisReady = () => {
    if (!redisWasDown) return
    redisWasDown = false
    void reconcile().catch(warn)
  }
  redis.on('close', onRedisClose)
  redis.on('ready', onRedisReady)

  async function expireOld(now = Date.now()): Promise<number> {
    const cutoff = now - deps.requestTtlSeconds * 1000
    let expired = 0
    for (const row of await requests.expiredBefore(cutoff, 500)) {
      const cls = classOfRecord(row)
      if (!(await jobQueue.removeWaiting(cls.queue, row.id, row.userId))) continue
      if (await requests.end(row.id, 'failed', { error: 'expired' })) {
        expired++
        await deps.fanout.publish(row.id, failedEvent(row.id, 'expired', `No worker took the request within ${deps.requestTtlSeconds} s`))
      }
    }
    return expired
  }
  const expiryTimer = setInterval(() => void expireOld().catch(() => {}), Math.min(5000, deps.requestTtlSeconds * 250))
  expiryTimer.unref()

  return {
    reconcile,
    expireOld,
    stopExpiry: () => clearInterval(expiryTimer),
    close() {
      clearInterval(expiryTimer)
      clearInterval(reconcileTimer)
      redis.off('close', onRedisClose)
      redis.off('ready', onRedisReady)
    },
  }
}
