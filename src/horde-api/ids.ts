/**
 * Ids and names as AI Horde's programs expect them. Request and job ids are already UUIDs;
 * a worker's id is its database row number inside a version-8 UUID (the last 12 hex digits),
 * so it reads back without a lookup table. Users are shown and accepted as `alias#id`.
 */

/** Any UUID, as horde-sdk validates ids. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const WORKER_PREFIX = '00000000-0000-8000-8000-'

/** The UUID AI Horde's programs see for the worker row `id`. */
export function workerUuid(id: number): string {
  return WORKER_PREFIX + id.toString(16).padStart(12, '0')
}

/** The worker row number inside a worker UUID; undefined for anything else. */
export function workerIdOf(uuid: string): number | undefined {
  const text = uuid.toLowerCase()
  if (!text.startsWith(WORKER_PREFIX) || !UUID.test(text)) return undefined
  const id = Number.parseInt(text.slice(WORKER_PREFIX.length), 16)
  return Number.isSafeInteger(id) && id > 0 ? id : undefined
}

/** `alice#12`: how AI Horde names a user everywhere. */
export function aliasOf(user: { id: number; username: string }): string {
  return `${user.username}#${user.id}`
}

/**
 * A user as AI Horde's programs name one: `alias#id` (the id decides, as AI Horde's own
 * lookup does), or a plain username (accepted too, since this broker's names are unique).
 */
export function parseUserRef(text: string): { id: number } | { username: string } | undefined {
  const hash = text.lastIndexOf('#')
  if (hash === -1) return text.length > 0 ? { username: text } : undefined
  const digits = text.slice(hash + 1)
  if (!/^\d{1,15}$/.test(digits)) return undefined
  return { id: Number(digits) }
}
