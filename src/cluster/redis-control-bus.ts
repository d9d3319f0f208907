/**
 * The control bus across processes: one pub/sub channel for every message. The publisher's
 * own handlers run before `publish` resolves, as on the memory bus (a cancel for a job held
 * here takes effect at once); its copy coming back from Redis is recognized by the sender id
 * and skipped, so each handler hears each message once.
 *
 * Pub/sub is at-most-once: a process reconnecting to Redis misses what was said meanwhile.
 * Control messages are nudges to state kept elsewhere (the job queue, the key table, the
 * ledger), so a missed one costs latency until the next sweep, not correctness.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createRedis } from '../redis/connect.js'
import type { ClusterKeys } from './keys.js'
import { createHandlerTable } from './memory-control-bus.js'
import { createRedisFeed, type RedisFeed } from './redis-feed.js'
import type { ControlBus, ControlMessage } from './ports.js'

export interface RedisControlBusOptions {
  /** The Redis to connect to; the bus opens (and closes) its own two connections. */
  url: string
  /** Where the control channel lives. */
  keys: ClusterKeys
  /** Where a handler's exception or an unreadable message goes. */
  log(error: unknown): void
  /** The process's shared subscriber connection (the caller closes it); a private one when omitted. */
  feed?: RedisFeed
}

/** What travels on the channel: the message and who sent it. */
interface Envelope {
  from: string
  message: ControlMessage
}

/** Resolves once this process is subscribed, so no message published after it is missed. */
export async function createRedisControlBus(options: RedisControlBusOptions): Promise<ControlBus> {
  const { keys, log } = options
  const id = randomUUID()
  const table = createHandlerTable(log)
  const redis: Redis = createRedis(options.url, 'control')
  const ownFeed = options.feed ? undefined : createRedisFeed({ url: options.url, log, name: 'control-feed' })
  const feed = options.feed ?? ownFeed!
  let closed = false
  let stop = () => {}

  function heard(text: string): void {
    if (closed) return
    let envelope: Envelope
    try {
      envelope = JSON.parse(text) as Envelope
    } catch (error) {
      log(error)
      return
    }
    if (envelope.from !== id) table.deliver(envelope.message)
  }

  async function shut(): Promise<void> {
    closed = true
    stop()
    table.clear()
    await redis.quit().catch(() => redis.disconnect())
    await ownFeed?.close()
  }

  try {
    stop = await feed.listen(keys.control, heard)
  } catch (error) {
    await shut()
    throw error
  }

  return {
    async publish(message) {
      if (closed) return
      table.deliver(message)
      await redis.publish(keys.control, JSON.stringify({ from: id, message } satisfies Envelope))
    },
    on: (type, handler) => table.on(type, handler),
    async close() {
      if (!closed) await shut()
    },
  }
}
