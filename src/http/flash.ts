/**
 * One-time messages across a redirect (post/redirect/get): a form's POST stores what its
 * answer must show (a new key, an error with the fields kept), redirects, and the GET that
 * follows takes it, once. Kept in Redis for a few minutes under a random token named in the
 * redirect's query and bound to the user, so a reload shows nothing again and resubmits
 * nothing, and any broker process can answer the GET.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'

/** How long a message waits for its GET. */
const FLASH_TTL_SECONDS = 300
const TOKEN = /^[A-Za-z0-9_-]{22}$/

export interface Flash {
  /** Stores `value` for `userId` (0: a visitor); returns the token for the redirect. */
  put(userId: number, value: object): Promise<string>
  /** The value stored under `token` for `userId`, removed as it is read; undefined when none (taken, expired, someone else's). */
  take<T extends object>(userId: number, token: unknown): Promise<T | undefined>
}

export function createFlash(redis: Redis, prefix: string): Flash {
  const key = (token: string) => `${prefix}:flash:${token}`
  return {
    async put(userId, value) {
      const token = randomBytes(16).toString('base64url')
      await redis.set(key(token), JSON.stringify({ userId, value }), 'EX', FLASH_TTL_SECONDS)
      return token
    },
    async take<T extends object>(userId: number, token: unknown) {
      if (typeof token !== 'string' || !TOKEN.test(token)) return undefined
      const raw = await redis.getdel(key(token))
      if (!raw) return undefined
      const stored = JSON.parse(raw) as { userId: number; value: T }
      return stored.userId === userId ? stored.value : undefined
    },
  }
}
