/**
 * The uptime journal: where a broker process keeps, in Redis, the uptime it observed but
 * has not paid yet, so that a process killed without a goodbye does not take its workers'
 * accrued minutes with it. Each process rewrites its own hash every heartbeat (worker id ->
 * the credit its next flush will post, under the very ref that flush will use) and pushes
 * its liveness forward in a sorted set, on Redis's clock. Once a process's liveness has
 * lapsed, any other process (or the same horde restarted) adopts its journal: it posts
 * each credit, and a credit whose ref the dead process had already posted is refused by
 * the ledger as a duplicate, so nothing is paid twice. At most one heartbeat of accrual is
 * lost, the time since the last rewrite.
 */
import type { Redis } from 'ioredis'
import type { UptimeCredit } from '../store/ports.js'
import type { ClusterKeys } from './keys.js'
import { defineScript, runScript } from './lua.js'

export interface UptimeJournal {
  /** Replaces this process's journal with `credits` and keeps it alive for `ttlMs`. */
  checkpoint(credits: readonly UptimeCredit[]): Promise<void>
  /** Journals of processes whose liveness lapsed, with their credits (this process's never). */
  orphans(): Promise<Array<{ process: string; credits: UptimeCredit[] }>>
  /**
   * Forgets a lapsed process's journal once its credits are posted (or found posted). A
   * process that stops in good order leaves its last journal too: its refs were paid on the
   * way out, so whoever adopts it finds them posted.
   */
  forget(process: string): Promise<void>
}

const CHECKPOINT = defineScript(`
-- Rewrites one process's journal and pushes its liveness forward.
-- KEYS[1]  the holders' sorted set: process -> when its liveness lapses (ms, Redis clock)
-- KEYS[2]  this process's journal: worker id -> JSON credit
-- ARGV[1]  this process's id
-- ARGV[2]  the liveness TTL, ms
-- ARGV[3..] field, value pairs
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('DEL', KEYS[2])
if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
`)

const LAPSED = defineScript(`
-- The processes whose liveness has lapsed.
-- KEYS[1]  the holders' sorted set
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
`)

/** A journal is taken for dead only this long after its last checkpoint at the least (a slow process is not dead). */
export const UPTIME_JOURNAL_MIN_TTL_MS = 10_000

export interface RedisUptimeJournalOptions {
  redis: Redis
  keys: ClusterKeys
  processId: string
  /** How long a journal stays this process's after its last checkpoint. */
  ttlMs: number
}

export function createRedisUptimeJournal(options: RedisUptimeJournalOptions): UptimeJournal {
  const { redis, keys, processId, ttlMs } = options
  return {
    async checkpoint(credits) {
      const pairs: string[] = []
      for (const credit of credits) pairs.push(String(credit.workerId), JSON.stringify(credit))
      await runScript(redis, CHECKPOINT, [keys.uptimeHolders, keys.uptimePending(processId)], [processId, ttlMs, ...pairs])
    },
    async orphans() {
      const lapsed = ((await runScript(redis, LAPSED, [keys.uptimeHolders], [])) as string[]).filter((p) => p !== processId)
      const found: Array<{ process: string; credits: UptimeCredit[] }> = []
      for (const process of lapsed) {
        const fields = await redis.hvals(keys.uptimePending(process))
        const credits: UptimeCredit[] = []
        for (const value of fields) {
          const credit = parseCredit(value)
          if (credit) credits.push(credit)
        }
        found.push({ process, credits })
      }
      return found
    },
    async forget(process) {
      await redis.multi().del(keys.uptimePending(process)).zrem(keys.uptimeHolders, process).exec()
    },
  }
}

/** A journal entry as written by `checkpoint`; anything else (a foreign or damaged value) is skipped. */
function parseCredit(value: string): UptimeCredit | undefined {
  try {
    const c = JSON.parse(value) as Record<string, unknown>
    const ok = Number.isSafeInteger(c.workerId) && Number.isSafeInteger(c.ownerId) && Number.isSafeInteger(c.milli) &&
      (c.milli as number) > 0 && typeof c.ms === 'number' && Number.isFinite(c.ms) && typeof c.ref === 'string' && c.ref.length > 0
    return ok ? { workerId: c.workerId as number, ownerId: c.ownerId as number, ms: c.ms as number, milli: c.milli as number, ref: c.ref as string } : undefined
  } catch {
    return undefined
  }
}
