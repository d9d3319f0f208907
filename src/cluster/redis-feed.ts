/**
 * One Redis connection in subscriber mode, shared by everything in a process that listens
 * on pub/sub (the fan-out's request channels, the control bus's channel). Redis allows any
 * number of channels on one connection, so watching ten thousand requests costs ten
 * thousand SUBSCRIBEs, not ten thousand sockets.
 *
 * Channels are counted: the first listener subscribes, the last one to leave unsubscribes.
 * Commands on one connection run in order, so a SUBSCRIBE sent after an UNSUBSCRIBE of the
 * same channel always wins, with no bookkeeping of what is in flight.
 */
import type { Redis } from 'ioredis'
import { createRedis } from '../redis/connect.js'

export interface RedisFeed {
  /**
   * Calls `handler` with every message published on `channel`; resolves once Redis has
   * acknowledged the subscription. Returns the function that removes the handler (idempotent).
   */
  listen(channel: string, handler: (message: string) => void): Promise<() => void>
  /**
   * Calls `fn` after each reconnect, once every channel is subscribed again: what was
   * published while the connection was down is lost, and this is the moment to read it back.
   */
  onResubscribed(fn: () => void): () => void
  close(): Promise<void>
}

export interface RedisFeedOptions {
  /** The Redis to connect to. */
  url: string
  /** Where a handler's exception or a failed (un)subscribe goes. */
  log(error: unknown): void
  /** Connection name, as CLIENT LIST shows it. Default `feed`. */
  name?: string
}

interface Entry {
  handlers: Set<(message: string) => void>
  ready: Promise<unknown>
}

export function createRedisFeed(options: RedisFeedOptions): RedisFeed {
  const { log } = options
  const connection: Redis = createRedis(options.url, options.name ?? 'feed')
  const entries = new Map<string, Entry>()
  const resubscribed = new Set<() => void>()
  let connectedOnce = false
  let closed = false

  connection.on('message', (channel: string, message: string) => {
    const entry = entries.get(channel)
    if (!entry) return
    for (const handler of [...entry.handlers]) {
      try {
        handler(message)
      } catch (error) {
        log(error)
      }
    }
  })

  // ioredis subscribes again by itself after a reconnect, but only after announcing 'ready';
  // a PING queued from here is answered after those SUBSCRIBEs.
  connection.on('ready', () => {
    if (!connectedOnce) {
      connectedOnce = true
      return
    }
    setImmediate(() => {
      if (closed) return
      connection.ping().then(() => {
        for (const fn of [...resubscribed]) {
          try {
            fn()
          } catch (error) {
            log(error)
          }
        }
      }, log)
    })
  })

  return {
    async listen(channel, handler) {
      let entry = entries.get(channel)
      if (!entry) {
        const created: Entry = { handlers: new Set(), ready: connection.subscribe(channel) }
        // A failed SUBSCRIBE is not kept: the next listener tries again.
        created.ready.catch(() => {
          if (entries.get(channel) === created) entries.delete(channel)
        })
        entries.set(channel, (entry = created))
      }
      const current = entry
      // Each call gets its own wrapper, so one function listening twice is removed once per call.
      const wrapper = (message: string) => handler(message)
      current.handlers.add(wrapper)
      let removed = false
      const remove = () => {
        if (removed) return
        removed = true
        current.handlers.delete(wrapper)
        if (current.handlers.size === 0 && entries.get(channel) === current) {
          entries.delete(channel)
          if (!closed) void connection.unsubscribe(channel).catch(log)
        }
      }
      try {
        await current.ready
      } catch (error) {
        remove()
        throw error
      }
      return remove
    },

    onResubscribed(fn) {
      resubscribed.add(fn)
      return () => void resubscribed.delete(fn)
    },

    async close() {
      if (closed) return
      closed = true
      entries.clear()
      resubscribed.clear()
      await connection.quit().catch(() => connection.disconnect())
    },
  }
}
