/**
 * Pushes status snapshots to subscribers: one snapshot taken and serialized per interval
 * for all of them (not one per socket), and a timer that runs only while someone listens.
 */
import type { StatusSource } from './status.js'

export interface StatusFeed {
  /** The current snapshot as the frame every subscriber gets: `{ type: 'status', status }`. */
  frame(): string
  /** Registers a subscriber; returns the function that removes it. */
  subscribe(send: (frame: string) => void): () => void
  stop(): void
  readonly size: number
}

export function createStatusFeed(source: StatusSource, intervalMs: number): StatusFeed {
  const subscribers = new Set<(frame: string) => void>()
  let timer: NodeJS.Timeout | undefined

  const frame = () => JSON.stringify({ type: 'status', status: source.snapshot() })

  function tick(): void {
    const text = frame()
    for (const send of subscribers) send(text)
  }

  function stop(): void {
    clearInterval(timer)
    timer = undefined
  }

  return {
    frame,
    subscribe(send) {
      subscribers.add(send)
      if (!timer) {
        timer = setInterval(tick, intervalMs)
        timer.unref()
      }
      return () => {
        subscribers.delete(send)
        if (subscribers.size === 0) stop()
      }
    },
    stop,
    get size() {
      return subscribers.size
    },
  }
}
