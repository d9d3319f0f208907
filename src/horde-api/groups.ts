/**
 * Requests of `n` > 1. AI Horde answers one id for `n` generations; here each generation is
 * an ordinary request (queued, served, billed and audited like any other), and the v2 id of
 * the batch names its members in Redis, for as long as its status may be asked. A batch of
 * one has no entry: its v2 id is the request id itself, which lives as long as the request.
 */
import type { Redis } from 'ioredis'

export interface Groups {
  save(id: string, members: readonly string[]): Promise<void>
  /** The requests of a batch, or undefined when `id` names none (a single request, or nothing). */
  members(id: string): Promise<string[] | undefined>
}

export function createGroups(options: { redis: Redis; prefix: string; ttlSeconds: number }): Groups {
  const { redis } = options
  const key = (id: string) => `${options.prefix}:horde-api:batch:${id}`
  return {
    async save(id, members) {
      await redis.set(key(id), JSON.stringify(members), 'EX', Math.ceil(options.ttlSeconds))
    },
    async members(id) {
      const raw = await redis.get(key(id))
      if (raw === null) return undefined
      const parsed = JSON.parse(raw) as unknown
      return Array.isArray(parsed) ? parsed.filter((m): m is string => typeof m === 'string') : undefined
    },
  }
}
