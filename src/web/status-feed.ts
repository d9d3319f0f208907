/**
 * Pushes status snapshots to subscribers: one snapshot taken and serialized per interval
 * for all of them (not one per socket), and a timer that runs only while someone listens.
 */
import type { StatusSource } from './status.js'

export interface StatusFeed {
  /** The current snapshot as the frame every subscriber gets: `{ type: 'status', status }`. */
  frame(): Promise<string>
  /** Registers a subscriber; returns the function that removes it. */
  subscribe(send: (frame: string) => void): () => void
  stop(): void
  readonly size: number
}

export function createStatusFeed(source: StatusSource, intervalMs: number): StatusFeed {
  const subscribers = new Set<(frame: string) => void>()
  let timer: NodeJS.Timeout | undefined

  const frame = async () => JSON.stringify({ type: 'status', status: await source.snapshot() })

  let ticking = false
  async function tick(): Promise<void> {
    if (ticking) return // a slow snapshot never piles up
    ticking = true
    try {
      const text = await frame()
      for (const send of subscribers) send(text)
    } catch { /* Redis away: skip this push */ } finally {
      ticking = false
    }
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
        timer = setInterval(() => void tick(), intervalMs)
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
