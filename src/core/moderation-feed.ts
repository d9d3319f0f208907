/**
 * The moderation feed: how a broker process learns of moderators' decisions, wherever they
 * were made (a REST call here, another process, or `horde-admin` writing to the database
 * while the broker runs). Every decision is a row of the audit trail, written with the
 * change; this reads the rows after its cursor (every `pollMs`, and at once when this
 * process made a change itself) and applies what each means to what the process holds:
 *
 * | action                         | effect here                                               |
 * |--------------------------------|-----------------------------------------------------------|
 * | user_suspend / user_unsuspend  | the suspended set (submits refused); the user's workers closed |
 * | worker_trust / worker_untrust  | the connected worker's trust (dispatch), re-read from its row  |
 * | worker_pause / worker_unpause  | the connected worker's pause, re-read from its row, told to it |
 * | award                          | the recipient's waiting requests re-prioritized            |
 * | role_grant / role_revoke       | nothing: roles are read with the key on every request      |
 */
import type { AdminActionRecord, ModerationStore, WorkerStore } from '../store/ports.js'
import { Coalescer } from '../util/coalescer.js'

export interface ModerationFeedDeps {
  moderation: Pick<ModerationStore, 'actions' | 'lastActionId' | 'suspendedUsers'>
  workers: Pick<WorkerStore, 'byName'>
  /** Applies a worker row's flags to its session here, if this process holds it. */
  workerChanged(row: NonNullable<Awaited<ReturnType<WorkerStore['byName']>>>): Promise<void>
  /** Closes the user's workers held here. */
  ownerSuspended(userId: number): void
  /** An award was minted for the user (its waiting requests move). */
  balanceChanged(userId: number): Promise<void>
  /** Milliseconds between two reads of the trail. */
  pollMs: number
  log(error: unknown): void
}

export interface ModerationFeed {
  /** Loads the suspended users and starts reading after the trail's newest row. */
  start(): Promise<void>
  /** True when the user is suspended, as this process last heard. */
  isSuspended(userId: number): boolean
  /** Reads and applies the rows written since the last read (at once, e.g. after a change made here). */
  sync(): Promise<void>
  close(): void
}

export function createModerationFeed(deps: ModerationFeedDeps): ModerationFeed {
  const suspended = new Set<number>()
  const reading = new Coalescer<'feed'>({ onError: deps.log })
  let cursor = 0
  let timer: NodeJS.Timeout | undefined
  let closed = false

  async function apply(row: AdminActionRecord): Promise<void> {
    switch (row.action) {
      case 'user_suspend':
        if (row.targetUserId === null) return
        suspended.add(row.targetUserId)
        deps.ownerSuspended(row.targetUserId)
        return
      case 'user_unsuspend':
        if (row.targetUserId !== null) suspended.delete(row.targetUserId)
        return
      case 'worker_trust': case 'worker_untrust': case 'worker_pause': case 'worker_unpause': {
        // The row, not the action, says what holds now: rows applied late or twice end the same.
        const worker = await deps.workers.byName(row.target)
        if (worker) await deps.workerChanged(worker)
        return
      }
      case 'award':
        if (row.targetUserId !== null) await deps.balanceChanged(row.targetUserId)
        return
      case 'role_grant': case 'role_revoke': case 'sessions_end':
        return
      default: {
        const never: never = row.action
        deps.log(new Error(`unknown admin action ${String(never)}`))
      }
    }
  }

  function sync(): Promise<void> {
    return reading.run('feed', async () => {
      while (!closed) {
        const rows = await deps.moderation.actions({ after: cursor, limit: 500 })
        for (const row of rows) {
          try {
            await apply(row)
          } catch (error) {
            deps.log(error)
          }
          cursor = row.id
        }
        if (rows.length < 500) return
      }
    })
  }

  return {
    async start() {
      cursor = await deps.moderation.lastActionId()
      for (const id of await deps.moderation.suspendedUsers()) suspended.add(id)
      timer = setInterval(() => void sync(), deps.pollMs)
      timer.unref()
    },
    isSuspended: (userId) => suspended.has(userId),
    sync,
    close() {
      closed = true
      clearInterval(timer)
    },
  }
}
