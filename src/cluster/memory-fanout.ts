/**
 * The fan-out port for one process: a stream per request held in memory, positions 1, 2, 3...
 *
 * Ordering is the whole difficulty. A listener may publish, or subscribe, from inside its
 * own callback, so delivery never recurses: each stream has an outbox drained by one loop
 * at a time, and a publish made during delivery only appends to it. A subscriber catching
 * up from the history parks live events in its own buffer until the catch-up is done, and
 * every subscriber remembers the last position it was given and skips anything not after it.
 * Together these give each subscriber every event once, in position order.
 */
import type { EventListener, Fanout, PositionedEvent, Position, RequestEvent, Subscription } from './ports.js'

export interface MemoryFanoutOptions {
  /** Events kept per request for catch-up; older ones are dropped. Default 10,000. */
  historySize?: number
  /** How long a request's stream is kept after its final event, in ms. Default 60,000. */
  forgetMs?: number
  /** Where a listener's exception goes (it never reaches the publisher). Default console.error. */
  log?: (error: unknown) => void
}

/** Events kept per request unless told otherwise. */
export const DEFAULT_HISTORY_SIZE = 10_000
/** How long a finished request's stream stays replayable unless told otherwise. */
export const DEFAULT_FORGET_MS = 60_000

interface Subscriber {
  listener: EventListener
  /** The last position handed to this listener. */
  last: Position
  /** Live events that arrived while the catch-up was being delivered; null once live. */
  parked: PositionedEvent[] | null
  closed: boolean
}

interface Stream {
  /** The last position given out. */
  last: Position
  /** Kept events are `events[head..]`; the head moves instead of shifting the array. */
  events: PositionedEvent[]
  head: number
  subscribers: Set<Subscriber>
  /** Published but not yet handed to every subscriber. */
  outbox: PositionedEvent[]
  draining: boolean
  ended: boolean
  forgetTimer?: NodeJS.Timeout
}

export function createMemoryFanout(options: MemoryFanoutOptions = {}): Fanout {
  const historySize = options.historySize ?? DEFAULT_HISTORY_SIZE
  const forgetMs = options.forgetMs ?? DEFAULT_FORGET_MS
  const log = options.log ?? ((error: unknown) => console.error(error))
  const streams = new Map<string, Stream>()

  function streamOf(request: string): Stream {
    let stream = streams.get(request)
    if (!stream) {
      stream = { last: 0, events: [], head: 0, subscribers: new Set(), outbox: [], draining: false, ended: false }
      streams.set(request, stream)
    }
    return stream
  }

  /** Kept events after `since`, oldest first. Positions are contiguous, so this is a slice. */
  function keptAfter(stream: Stream | undefined, since: Position): PositionedEvent[] {
    if (!stream || stream.head === stream.events.length) return []
    const first = stream.events[stream.head].position
    return stream.events.slice(stream.head + Math.max(0, since + 1 - first))
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

  function offer(subscriber: Subscriber, event: PositionedEvent): void {
    if (subscriber.parked) subscriber.parked.push(event)
    else call(subscriber, event)
  }

  function drain(stream: Stream): void {
    if (stream.draining) return
    stream.draining = true
    try {
      for (let event = stream.outbox.shift(); event; event = stream.outbox.shift()) {
        for (const subscriber of stream.subscribers) offer(subscriber, event)
      }
    } finally {
      stream.draining = false
    }
  }

  /** Drops a stream nobody needs any more: no subscriber, and nothing left worth replaying. */
  function release(request: string, stream: Stream): void {
    const replayable = stream.head < stream.events.length
    if (stream.subscribers.size === 0 && !replayable && streams.get(request) === stream) {
      clearTimeout(stream.forgetTimer)
      streams.delete(request)
    }
  }

  function forget(request: string, stream: Stream): void {
    stream.forgetTimer = undefined
    stream.events = []
    stream.head = 0
    release(request, stream)
  }

  return {
    async publish(request: string, event: RequestEvent): Promise<Position> {
      const stream = streamOf(request)
      // Frozen: every subscriber and every history reader is handed this same object.
      const positioned: PositionedEvent = Object.freeze({ type: event.type, frame: event.frame, final: event.final, position: ++stream.last, ...(event.type === 'chunk' ? { attempt: event.attempt, seq: event.seq } : {}) })
      stream.events.push(positioned)
      if (stream.events.length - stream.head > historySize) stream.head++
      // Compact once the dropped prefix is as long as what is kept: amortized O(1) per event.
      if (stream.head >= historySize) {
        stream.events = stream.events.slice(stream.head)
        stream.head = 0
      }
      if (event.final && !stream.ended) {
        stream.ended = true
        stream.forgetTimer = setTimeout(() => forget(request, stream), forgetMs)
        stream.forgetTimer.unref()
      }
      stream.outbox.push(positioned)
      drain(stream)
      return positioned.position
    },

    async subscribe(request: string, listener: EventListener, since?: Position): Promise<Subscription> {
      const stream = streamOf(request)
      const start = since ?? stream.last
      const subscriber: Subscriber = { listener, last: start, parked: since === undefined ? null : [], closed: false }
      const catchUp = since === undefined ? [] : keptAfter(stream, since)
      const recovered = since === undefined || since === stream.last || (since < stream.last && catchUp[0]?.position === since + 1)
      stream.subscribers.add(subscriber)
      for (const event of catchUp) call(subscriber, event)
      // What arrived during the catch-up (a listener may publish) follows, and may grow as it goes.
      if (subscriber.parked) {
        for (let event = subscriber.parked.shift(); event; event = subscriber.parked.shift()) call(subscriber, event)
        subscriber.parked = null
      }
      return {
        recovered,
        close() {
          if (subscriber.closed) return
          subscriber.closed = true
          stream.subscribers.delete(subscriber)
          release(request, stream)
        },
      }
    },

    async history(request: string, since: Position = 0): Promise<PositionedEvent[]> {
      return keptAfter(streams.get(request), since)
    },

    listeners(request: string): number {
      return streams.get(request)?.subscribers.size ?? 0
    },

    async close(): Promise<void> {
      for (const stream of streams.values()) {
        clearTimeout(stream.forgetTimer)
        for (const subscriber of stream.subscribers) subscriber.closed = true
      }
      streams.clear()
    },
  }
}
