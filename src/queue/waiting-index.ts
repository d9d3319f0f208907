/**
 * The per-user index of waiting requests. BullMQ has no "jobs of user X" lookup, and two
 * things need one: moving a user's requests when their kudos priority changes (cost
 * proportional to that user's requests, not to the queue), and a worker serving its
 * owner's and priority users' requests first. So each user has a sorted set of their
 * waiting requests, member `queue|request`, scored by submit time (oldest first), and the
 * priority bucket their requests were last put in.
 *
 * Only `JobQueue` writes it, alongside the BullMQ calls that make a job waiting or not,
 * so the two cannot drift apart through a caller forgetting one. An entry that outlives
 * its job (a claim elsewhere raced it) is harmless: moving or lifting a job that is no
 * longer waiting fails and is skipped. Every write is idempotent.
 */
import type { Redis } from 'ioredis'
import type { Keys } from './keys.js'

/** One waiting request of a user, as the index holds it. */
export interface WaitingEntry {
  /** BullMQ queue (request class) holding the job. */
  queue: string
  /** Request id, which is also the BullMQ job id. */
  request: string
  /** Submit time, ms since the epoch: the order of the user's requests. */
  submittedAt: number
}

/** What the reprioritizer reads of a user, in one round trip. */
export interface UserWaiting {
  /** Every waiting request of the user, oldest first. */
  entries: WaitingEntry[]
  /** The priority bucket last recorded for the user, or null when none is. */
  bucket: number | null
}

/** How many entries per user dispatch looks at for preferred users. */
export const PREFERRED_LOOKAHEAD = 50

// Queue names are `gen-<hex>` and request ids UUIDs, so neither contains the separator.
const SEPARATOR = '|'

/** The sorted-set member of a request. */
export function encodeMember(queue: string, request: string): string {
  return `${queue}${SEPARATOR}${request}`
}

/** The queue and request of a sorted-set member. */
export function decodeMember(member: string): { queue: string; request: string } {
  const at = member.indexOf(SEPARATOR)
  return { queue: member.slice(0, at), request: member.slice(at + 1) }
}

/** A flat `[member, score, member, score...]` reply as entries. */
function decodeEntries(flat: readonly string[] | undefined): WaitingEntry[] {
  const entries: WaitingEntry[] = []
  if (!flat) return entries
  for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ ...decodeMember(flat[i]), submittedAt: Number(flat[i + 1]) })
  return entries
}

export class WaitingIndex {
  constructor(private readonly redis: Redis, private readonly keys: Pick<Keys, 'waiting' | 'bucket'>) {}

  /** Records a waiting request (again: a second write of the same request changes nothing). */
  add(userId: number, entry: WaitingEntry): Promise<unknown> {
    return this.redis.zadd(this.keys.waiting(userId), entry.submittedAt, encodeMember(entry.queue, entry.request))
  }

  /** Forgets a request that is no longer waiting (claimed, cancelled, expired). */
  remove(userId: number, queue: string, request: string): Promise<unknown> {
    return this.redis.zrem(this.keys.waiting(userId), encodeMember(queue, request))
  }

  /** Every waiting request of a user with the user's recorded bucket. */
  async ofUser(userId: number): Promise<UserWaiting> {
    const [flat, bucket] = await Promise.all([
      this.redis.zrange(this.keys.waiting(userId), '0', '-1', 'WITHSCORES'),
      this.redis.get(this.keys.bucket(userId)),
    ])
    return { entries: decodeEntries(flat), bucket: bucket === null ? null : Number(bucket) }
  }

  /**
   * The oldest `limit` waiting requests of each user, in one round trip: one list per
   * user, in the order the users were given, each oldest first.
   */
  async ofUsers(userIds: readonly number[], limit = PREFERRED_LOOKAHEAD): Promise<WaitingEntry[][]> {
    if (userIds.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const userId of userIds) pipeline.zrange(this.keys.waiting(userId), '0', String(limit - 1), 'WITHSCORES')
    const results = (await pipeline.exec()) ?? []
    return userIds.map((_, i) => (results[i]?.[0] ? [] : decodeEntries(results[i]?.[1] as string[] | undefined)))
  }

  /** Records the priority bucket a user's waiting requests now sit at. */
  setBucket(userId: number, priority: number): Promise<unknown> {
    return this.redis.set(this.keys.bucket(userId), String(priority))
  }
}
