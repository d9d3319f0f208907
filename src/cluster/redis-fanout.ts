/**
 * The fan-out port across processes, the way centrifuge's Redis broker does it: a stream per
 * request keeps the history, pub/sub carries the live feed, and one script appends to the
 * stream and publishes with the position it gave, so the two never disagree on order.
 *
 * A subscriber subscribes to the request's channel first and only then reads the stream:
 * anything published in between arrives both ways, and the position check drops the copy.
 * Every process has one subscriber connection (a `RedisFeed`), shared by all the requests it
 * watches and, when handed the same feed, by the control bus.
 *
 * Pub/sub is at-most-once (a reconnect loses what was said meanwhile). A live event that
 * skips positions therefore makes the subscriber read the missing ones from the stream
 * before going on, and a reconnect does the same for every subscription.
 */
import type { Redis } from 'ioredis'
import { createRedis } from '../redis/connect.js'
import type { ClusterKeys } from './keys.js'
import { defineScript, runScript } from './lua.js'
import { createRedisFeed, type RedisFeed } from './redis-feed.js'
import { DEFAULT_FORGET_MS, DEFAULT_HISTORY_SIZE } from './memory-fanout.js'
import type { EventListener, Fanout, PositionedEvent, Position, RequestEvent, Subscription } from './ports.js'

export interface RedisFanoutOptions {
  /** The Redis to connect to; the fan-out opens (and closes) its own two connections. */
  url: string
  /** Where the streams and channels live. */
  keys: ClusterKeys
  /** Where a listener's exception or a lost Redis call goes. */
  log(error: unknown): void
  /** The process's shared subscriber connection (the caller closes it); a private one when omitted. */
  feed?: RedisFeed
  /** Events kept per request. Default 10,000. */
  historySize?: number
  /** How long a stream is kept after its final event, in ms. Default 60,000. */
  forgetMs?: number
  /** How long a stream with no final event is kept after its last event, in ms (a publisher that died). Default 1 h. */
  idleMs?: number
}

/** A stream nobody finished is dropped after this long without events, unless told otherwise. */
export const DEFAULT_IDLE_MS = 3_600_000

/** The one write of a publish: stream, counter, expiry and live feed in a single atomic step. */
const PUBLISH = defineScript(`
-- Appends an event to a request's stream and publishes it with its position.
-- KEYS[1]  the request's stream
-- KEYS[2]  the request's position counter
-- ARGV[1]  the request's pub/sub channel
-- ARGV[2]  history size (exact MAXLEN)
-- ARGV[3]  event type
-- ARGV[4]  '1' if final, else '0'
-- ARGV[5]  frame
-- ARGV[6]  expiry in ms for both keys: the forget delay after a final event, else the idle delay
-- Returns  the event's position
local position = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], position .. '-0', 't', ARGV[3], 'f', ARGV[4], 'd', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[1], position .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
return position
`)

interface Subscriber {
  listener: EventListener
  last: Position
  /** Live events held while the stream is being read; null when live. */
  parked: PositionedEvent[] | null
  /** The feed reconnected while a read was under way: read once more when it is done. */
  reread: boolean
  closed: boolean
}

interface Channel {
  request: string
  subscribers: Set<Subscriber>
  /** Settles when Redis has acknowledged the SUBSCRIBE, with the function that leaves the channel. */
  ready: Promise<() => void>
}

type StreamEntry = [id: string, fields: string[]]

function fromEntry([id, fields]: StreamEntry): PositionedEvent {
  const value = (name: string) => fields[fields.indexOf(name) + 1]
  return placed({ position: Number.parseInt(id, 10), type: value('t') as RequestEvent['type'], final: value('f') === '1', frame: value('d') })
}

/** The frame's head names a chunk's attempt and seq (src/core/events.ts builds it so): read them back. */
const CHUNK_PLACE = /^\{"type":"chunk","request":"[^"]*","attempt":(\d+),"seq":(\d+)/

function placed(event: PositionedEvent): PositionedEvent {
  if (event.type !== 'chunk') return event
  const match = CHUNK_PLACE.exec(event.frame)
  if (match) {
    event.attempt = Number(match[1])
    event.seq = Number(match[2])
  }
  return event
}

/** Live messages are `<position> <type> <final> <frame>`: the frame is sent as is, not re-escaped. */
function fromMessage(message: string): PositionedEvent | undefined {
  const a = message.indexOf(' ')
  const b = message.indexOf(' ', a + 1)
  const c = message.indexOf(' ', b + 1)
  if (a < 0 || b < 0 || c < 0) return undefined
  return placed({ position: Number(message.slice(0, a)), type: message.slice(a + 1, b) as RequestEvent['type'], final: message.slice(b + 1, c) === '1', frame: message.slice(c + 1) })
}

export function createRedisFanout(options: RedisFanoutOptions): Fanout {
  const { keys, log } = options
  const historySize = options.historySize ?? DEFAULT_HISTORY_SIZE
  const forgetMs = options.forgetMs ?? DEFAULT_FORGET_MS
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS
  const redis: Redis = createRedis(options.url, 'fanout')
  const ownFeed = options.feed ? undefined : createRedisFeed({ url: options.url, log, name: 'fanout-feed' })
  const feed = options.feed ?? ownFeed!
  const channels = new Map<string, Channel>()
  let closed = false

  // After a reconnect, what was published while the feed was down is read from the streams.
  const stopResync = feed.onResubscribed(() => {
    for (const channel of channels.values()) {
      for (const subscriber of channel.subscribers) {
        if (subscriber.parked) subscriber.reread = true
        else void resync(channel, subscriber)
      }
    }
  })

  function heard(channel: Channel, message: string): void {
    const event = fromMessage(message)
    if (!event) return log(new Error(`unreadable fan-out message on ${keys.events(channel.request)}`))
    for (const subscriber of channel.subscribers) offer(channel, subscriber, event)
  }

  function call(subscriber: Subscriber, event: PositionedEvent): void {
    if (subscriber.closed || event.position <= subscriber.last) return
    subscriber.last = event.position
    try {
      subscriber.listener(event)
    } catch (error) {
      log(error)
    }
  }

  function offer(channel: Channel, subscriber: Subscriber, event: PositionedEvent): void {
    if (subscriber.parked) subscriber.parked.push(event)
    else if (event.position > subscriber.last + 1) {
      // A gap: the missing events are in the stream.
      subscriber.parked = [event]
      void resync(channel, subscriber)
    } else call(subscriber, event)
  }

  async function read(request: string, since: Position): Promise<{ events: PositionedEvent[]; last: Position }> {
    const replies = await redis.multi().xrange(keys.stream(request), String(since + 1), '+').get(keys.position(request)).exec()
    const [rangeError, entries] = replies?.[0] ?? [new Error('transaction aborted')]
    if (rangeError) throw rangeError
    const last = Number(replies?.[1]?.[1] ?? 0)
    return { events: (entries as StreamEntry[]).map(fromEntry), last }
  }

  /** Reads the stream after what the subscriber has, delivers it, then what was parked meanwhile. */
  async function resync(channel: Channel, subscriber: Subscriber): Promise<void> {
    // Set before the first await: live events that come during the read wait behind it.
    subscriber.parked ??= []
    try {
      const { events } = await read(channel.request, subscriber.last)
      for (const event of events) call(subscriber, event)
    } catch (error) {
      log(error)
    } finally {
      // Handed over as they are, without a second re-read: if the stream no longer has what
      // lies between (trimmed, or Redis lost it), asking again would loop, not fill the gap.
      const parked = subscriber.parked ?? []
      subscriber.parked = null
      for (const event of parked) call(subscriber, event)
      rereadIfAsked(channel, subscriber)
    }
  }

  function rereadIfAsked(channel: Channel, subscriber: Subscriber): void {
    // A read under way (parked is set) will call this again when it ends: one read at a time.
    if (!subscriber.reread || subscriber.closed || subscriber.parked) return
    subscriber.reread = false
    void resync(channel, subscriber)
  }

  function channelFor(request: string): Channel {
    const name = keys.events(request)
    let channel = channels.get(name)
    if (!channel) {
      const created = { request, subscribers: new Set() } as Channel
      created.ready = feed.listen(name, (message) => heard(created, message))
      // A failed SUBSCRIBE is not cached: its subscribers get the error, the next one tries again.
      created.ready.catch(() => {
        if (channels.get(name) === created) channels.delete(name)
      })
      channels.set(name, (channel = created))
    }
    return channel
  }

  function leave(channel: Channel, subscriber: Subscriber): void {
    if (subscriber.closed) return
    subscriber.closed = true
    channel.subscribers.delete(subscriber)
    const name = keys.events(channel.request)
    if (channel.subscribers.size === 0 && channels.get(name) === channel) {
      channels.delete(name)
      channel.ready.then((stop) => stop(), () => {})
    }
  }

  return {
    async publish(request, event) {
      const ttl = event.final ? forgetMs : idleMs
      const args = [keys.events(request), historySize, event.type, event.final ? '1' : '0', event.frame, ttl]
      return Number(await runScript(redis, PUBLISH, [keys.stream(request), keys.position(request)], args))
    },

    async subscribe(request, listener, since) {
      const channel = channelFor(request)
      const subscriber: Subscriber = { listener, last: since ?? 0, parked: [], reread: false, closed: false }
      // Joined before the SUBSCRIBE is acknowledged: nothing said after it can be missed.
      channel.subscribers.add(subscriber)
      let recovered = true
      try {
        await channel.ready
        if (since !== undefined) {
          const { events, last } = await read(request, since)
          recovered = since === last || (since < last && events[0]?.position === since + 1)
          for (const event of events) call(subscriber, event)
        } else {
          // Live only: what was published before now is skipped (read after the SUBSCRIBE, so no gap).
          subscriber.last = Number((await redis.get(keys.position(request))) ?? 0)
        }
      } catch (error) {
        leave(channel, subscriber)
        throw error
      }
      const parked = subscriber.parked ?? []
      subscriber.parked = null
      for (const event of parked) offer(channel, subscriber, event)
      rereadIfAsked(channel, subscriber)
      return { recovered, close: () => leave(channel, subscriber) }
    },

    async history(request, since = 0) {
      return (await read(request, since)).events
    },

    listeners(request) {
      return channels.get(keys.events(request))?.subscribers.size ?? 0
    },

    async close() {
      if (closed) return
      closed = true
      stopResync()
      for (const channel of [...channels.values()]) for (const subscriber of [...channel.subscribers]) leave(channel, subscriber)
      await redis.quit().catch(() => redis.disconnect())
      await ownFeed?.close()
    },
  }
}
