/**
 * The worker registry in Redis, shared by every broker process: a hash of worker name ->
 * JSON entry, and a liveness key per process that the process refreshes while it runs. A
 * process that dies without saying goodbye leaves entries behind; once its liveness key has
 * expired, readers ignore those entries and delete them.
 *
 * Both deletions are compare-and-delete scripts rather than HDEL, because a name moves: a
 * worker that reconnects gets a new session, perhaps on another process, and the old
 * session's late leave, or a reader cleaning up after the old process, must not remove it.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { ClusterKeys } from './keys.js'
import { defineScript, runScript } from './lua.js'
import type { OnlineWorker, WorkerRegistry } from './ports.js'

export interface RedisRegistryOptions {
  /** A command connection; the caller owns it (the registry does not close it). */
  redis: Redis
  /** Where the workers hash and the liveness keys live. */
  keys: ClusterKeys
  /** Where a failed background call (a liveness refresh, a clean-up) goes. */
  log(error: unknown): void
  /** This process's id; a random UUID when omitted. */
  processId?: string
  /** How often the liveness key is refreshed, in ms. Default 10,000. */
  refreshMs?: number
  /** The liveness key's TTL, in ms: how long a dead process's workers still show. Default 30,000. */
  ttlMs?: number
  /** How long `online()` answers from its last read, in ms. Default 1,000. */
  cacheMs?: number
}

/** Compare-and-delete of one entry: a late leave of an old session keeps the new one. */
const LEAVE = defineScript(`
-- Removes a worker's entry if it still belongs to the given session.
-- KEYS[1]  the workers hash
-- ARGV[1]  worker name
-- ARGV[2]  session
-- Returns  1 when the entry was removed; 0 when absent, unreadable, or another session's.
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return 0 end
local ok, entry = pcall(cjson.decode, json)
if ok and type(entry) == 'table' and entry.session == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

/** Clean-up after dead processes, safe against a name having moved to a live one meanwhile. */
const DROP_DEAD = defineScript(`
-- Removes entries left by dead processes: each only if the name is still held by that
-- process (not taken since by a live one) and the process's liveness key is still absent.
-- KEYS[1]    the workers hash
-- KEYS[1+i]  the liveness key of entry i's process (i = 1..n)
-- ARGV[i]    entry i's worker name
-- ARGV[n+i]  entry i's process id
-- Returns    how many entries were removed
local n = #ARGV / 2
local removed = 0
for i = 1, n do
  local json = redis.call('HGET', KEYS[1], ARGV[i])
  if json and redis.call('EXISTS', KEYS[1 + i]) == 0 then
    local ok, entry = pcall(cjson.decode, json)
    if ok and type(entry) == 'table' and entry.process == ARGV[n + i] then
      redis.call('HDEL', KEYS[1], ARGV[i])
      removed = removed + 1
    end
  end
end
return removed
`)

/** Liveness refresh, TTL and read cache unless told otherwise (the dispatcher's figures). */
export const REGISTRY_DEFAULTS = { refreshMs: 10_000, ttlMs: 30_000, cacheMs: 1_000 } as const

export function createRedisRegistry(options: RedisRegistryOptions): WorkerRegistry {
  const { redis, keys, log } = options
  const processId = options.processId ?? randomUUID()
  const refreshMs = options.refreshMs ?? REGISTRY_DEFAULTS.refreshMs
  const ttlMs = options.ttlMs ?? REGISTRY_DEFAULTS.ttlMs
  const cacheMs = options.cacheMs ?? REGISTRY_DEFAULTS.cacheMs
  let cache: { at: number; workers: OnlineWorker[] } | undefined
  let reading: Promise<OnlineWorker[]> | undefined
  // Bumped on every join and leave: a read that started before one must not refill the cache.
  let generation = 0
  let closed = false

  // Sent before any join on the same connection, so Redis never sees our entry without our key.
  const markAlive = () => void redis.set(keys.process(processId), '1', 'PX', ttlMs).catch(log)
  markAlive()
  const aliveTimer = setInterval(markAlive, refreshMs)
  aliveTimer.unref()

  function changed(): void {
    generation++
    cache = undefined
    reading = undefined
  }

  async function read(): Promise<OnlineWorker[]> {
    const started = generation
    const all: OnlineWorker[] = []
    for (const json of await redis.hvals(keys.workers)) {
      try {
        all.push(JSON.parse(json) as OnlineWorker)
      } catch (error) {
        log(error)
      }
    }
    const processes = [...new Set(all.map((w) => w.process))]
    const alive = processes.length ? await redis.mget(...processes.map((p) => keys.process(p))) : []
    const live = new Set(processes.filter((_, i) => alive[i] !== null))
    const dead = all.filter((w) => !live.has(w.process))
    if (dead.length) {
      const deadKeys = dead.map((w) => keys.process(w.process))
      await runScript(redis, DROP_DEAD, [keys.workers, ...deadKeys], [...dead.map((w) => w.name), ...dead.map((w) => w.process)]).catch(log)
    }
    const workers = all.filter((w) => live.has(w.process))
    if (generation === started) cache = { at: Date.now(), workers }
    return workers
  }

  return {
    processId,
    async join(worker) {
      changed()
      const entry: OnlineWorker = { ...worker, process: processId }
      await redis.hset(keys.workers, worker.name, JSON.stringify(entry))
    },
    async leave(name, session) {
      changed()
      await runScript(redis, LEAVE, [keys.workers], [name, session])
    },
    async online() {
      if (cache && Date.now() - cache.at < cacheMs) return cache.workers
      // Concurrent callers share one read, unless a join or leave came after it started.
      if (!reading) {
        const current = read().finally(() => {
          if (reading === current) reading = undefined
        })
        reading = current
      }
      return reading
    },
    async close() {
      if (closed) return
      closed = true
      clearInterval(aliveTimer)
      await redis.del(keys.process(processId)).catch(log)
    },
  }
}
