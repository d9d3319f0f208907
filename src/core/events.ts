/**
 * The events of a request as watchers receive them, each serialized once by the core and
 * handed to every watcher (and to the fan-out's history) as the same string.
 */
import type { RequestEvent } from '../cluster/ports.js'

type ClientEventType = RequestEvent['type']

/** Builds one event; `final` marks the last event of a request. */
export function requestEvent(type: ClientEventType, body: Record<string, unknown>, final = false): RequestEvent {
  return { type, frame: JSON.stringify({ type, ...body }), final }
}

/**
 * A relayed chunk. Built by hand: it is the hottest frame there is, and every field but the
 * text is known to need no escaping (ids are UUIDs: hex digits and dashes; the numbers are integers).
 */
export function chunkEvent(request: string, attempt: number, seq: number, text: string): RequestEvent {
  return {
    type: 'chunk', final: false, attempt, seq,
    frame: `{"type":"chunk","request":"${request}","attempt":${attempt},"seq":${seq},"text":${JSON.stringify(text)}}`,
  }
}

/** `reason` (with `restarting`): why the attempt ended, `failed attempt: …` or `worker lost: …`. */
export function queuedEvent(request: string, position: number | null, isPossible: boolean, etaSeconds: number | null, restarting = false, reason?: string): RequestEvent {
  const body: Record<string, unknown> = { request, position, is_possible: isPossible, eta_seconds: etaSeconds }
  if (restarting) body.restarting = true
  if (restarting && reason) body.reason = reason
  return requestEvent('queued', body)
}

/** A request cancelled before any worker delivered text: nothing charged. */
export function cancelledUnstartedEvent(request: string): RequestEvent {
  return requestEvent('cancelled', { request, text: '', tokens: 0, kudos: 0 }, true)
}

export function failedEvent(request: string, code: string, message: string): RequestEvent {
  return requestEvent('failed', { request, code, message }, true)
}
