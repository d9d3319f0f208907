/**
 * The fan-out port: how a request's events reach every socket watching it, wherever the
 * worker producing them is connected. Frames are serialized once by the publisher and
 * handed to every subscriber as the same string. The memory implementation serves one
 * process; a Redis implementation (pub/sub or streams) would serve several behind the
 * same interface.
 */

/** Events of one request. `frame` is the JSON text clients receive; control events have none. */
export type RequestEvent =
  | { kind: 'client'; type: 'queued' | 'started' | 'chunk' | 'restarted' | 'done' | 'failed' | 'cancelled'; frame: string; final: boolean }
  /** To the process holding the request's worker: stop the job. */
  | { kind: 'control'; type: 'cancel' }

export type Listener = (event: RequestEvent) => void

export interface Fanout {
  publish(request: string, event: RequestEvent): void
  /** Returns the unsubscribe function. */
  subscribe(request: string, listener: Listener): () => void
  /** Subscribers of a request in this process (for metrics and tests). */
  listeners(request: string): number
}

export function createMemoryFanout(): Fanout {
  const channels = new Map<string, Set<Listener>>()
  return {
    publish(request, event) {
      const listeners = channels.get(request)
      if (!listeners) return
      for (const listener of listeners) listener(event)
    },
    subscribe(request, listener) {
      let listeners = channels.get(request)
      if (!listeners) channels.set(request, (listeners = new Set()))
      listeners.add(listener)
      return () => {
        listeners!.delete(listener)
        if (listeners!.size === 0 && channels.get(request) === listeners) channels.delete(request)
      }
    },
    listeners(request) {
      return channels.get(request)?.size ?? 0
    },
  }
}
