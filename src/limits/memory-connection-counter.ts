/** Open connections per key in one process: a map of counts (an absent key holds none). */
import type { ConnectionCounter } from './ports.js'

export function createMemoryConnectionCounter(limit: number): ConnectionCounter {
  const open = new Map<string, number>()
  return {
    limit,
    acquire(key) {
      const count = open.get(key) ?? 0
      if (count >= limit) return false
      open.set(key, count + 1)
      return true
    },
    release(key) {
      const left = (open.get(key) ?? 1) - 1
      if (left <= 0) open.delete(key)
      else open.set(key, left)
    },
    async count(key) {
      return open.get(key) ?? 0
    },
    async close() {},
  }
}
