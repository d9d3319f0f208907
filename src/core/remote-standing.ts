/**
 * Where a running request stands when its worker is on another process: read back from the
 * request's event stream (the fan-out's history), which every process shares. The last
 * attempt's `started` names the worker and model; its chunks, in order, are the text so far.
 * An attach that follows this view skips the chunks below `seq`, so nothing comes twice.
 */
import type { Fanout, PositionedEvent } from '../cluster/ports.js'

export interface RemoteStanding {
  attempt: number
  /** Chunks the text holds (the next chunk's seq). */
  seq: number
  worker: string | null
  model: string | null
  text: string
}

/** Null when the stream shows no started attempt (not started yet, or its history is gone). */
export async function remoteStanding(fanout: Fanout, request: string): Promise<RemoteStanding | null> {
  return standingOf(await fanout.history(request))
}

export function standingOf(events: readonly PositionedEvent[]): RemoteStanding | null {
  let found = null as RemoteStanding | null
  let parts: string[] = []
  for (const event of events) {
    if (event.type === 'started' || event.type === 'restarted') {
      const frame = JSON.parse(event.frame) as { attempt?: number; worker?: string; model?: string }
      const previous: RemoteStanding | null = found
      const attempt: number = frame.attempt ?? (previous?.attempt ?? 0) + 1
      if (event.type === 'restarted' || !previous || attempt !== previous.attempt) parts = []
      found = { attempt, seq: 0, worker: frame.worker ?? previous?.worker ?? null, model: frame.model ?? previous?.model ?? null, text: '' }
    } else if (event.type === 'chunk' && found && event.attempt === found.attempt && event.seq === parts.length) {
      parts.push((JSON.parse(event.frame) as { text: string }).text)
    }
  }
  if (!found) return null
  found.seq = parts.length
  found.text = parts.join('')
  return found
}

/**
 * The chunks of `attempt` after seq `last` and before seq `next` (what an attach with
 * `after` resends before the live events), from the stream's history; null when some are
 * gone from it or the attempt is unknown.
 */
export async function chunksBetween(fanout: Fanout, request: string, attempt: number, last: number, next: number): Promise<PositionedEvent[] | null> {
  if (attempt === 0) return null
  if (last + 1 >= next) return []
  const chunks = (await fanout.history(request)).filter((e) => e.type === 'chunk' && e.attempt === attempt && e.seq !== undefined && e.seq > last && e.seq < next)
  return chunks.length === next - last - 1 ? chunks : null
}
