/**
 * Queue positions pushed to watchers: once a second, each waiting request that someone here
 * watches is looked at, and a `queued` event goes out when its position moved.
 */
import type { Fanout } from '../cluster/ports.js'
import type { RequestClass } from '../queue/classes.js'
import { queuedEvent } from './events.js'
import type { Caller, Standing } from './generations.js'

export interface PositionFeedDeps {
  fanout: Fanout
  standing(caller: Caller, id: string): Promise<Standing>
  eta(position: number, cls: RequestClass): number
  intervalMs?: number
  log(error: unknown): void
}

export interface PositionFeed {
  /** Follows a waiting request for `caller` (idempotent). */
  watch(id: string, caller: Caller): void
  /** One pass over every followed request. */
  push(): Promise<void>
  stop(): void
}

export function createPositionFeed(deps: PositionFeedDeps): PositionFeed {
  const { fanout } = deps
  /** Waiting requests some socket here watches, with the position last told. */
  const followed = new Map<string, { caller: Caller; last: number | null }>()

  async function push(): Promise<void> {
    for (const [id, entry] of followed) {
      if (fanout.listeners(id) === 0) {
        followed.delete(id)
        continue
      }
      const current = await deps.standing(entry.caller, id).catch(() => undefined)
      if (!current || current.view.state !== 'waiting') {
        followed.delete(id)
        continue
      }
      const position = current.view.position ?? null
      if (position !== entry.last) {
        entry.last = position
        const eta = position === null || !current.cls ? null : deps.eta(position, current.cls)
        await fanout.publish(id, queuedEvent(id, position, current.view.is_possible ?? true, eta))
      }
    }
  }

  let pushing = false
  const timer = setInterval(() => {
    if (pushing) return
    pushing = true
    void push().catch(deps.log).finally(() => { pushing = false })
  }, deps.intervalMs ?? 1000)
  timer.unref()

  return {
    watch(id, caller) {
      if (!followed.has(id)) followed.set(id, { caller, last: null })
    },
    push,
    stop: () => clearInterval(timer),
  }
}
