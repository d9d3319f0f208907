/**
 * Server-sent events as OpenAI's clients read them: `data: <json>` events separated by a
 * blank line, `data: [DONE]` at the end, and comment lines (`: ...`), which every client
 * ignores, for what OpenAI has no field for (the queue position) and to keep idle
 * connections open through proxies. No `event:` lines: some SDK versions treat a named
 * event as something other than a chunk.
 */
import { PassThrough } from 'node:stream'

export interface SseStream {
  /** What the reply sends: the events as they are written. */
  readonly body: PassThrough
  comment(text: string): void
  data(value: object): void
  /** Writes `data: [DONE]` and ends the stream. */
  done(): void
  /** Ends the stream without `[DONE]` (after an in-stream error). */
  end(): void
  readonly ended: boolean
}

/** The response headers of a stream (the status is 200: errors after this point travel in the stream). */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  // Proxies such as nginx would otherwise hold events back in their buffers.
  'x-accel-buffering': 'no',
} as const

export function createSseStream(options: { keepAliveMs?: number } = {}): SseStream {
  const body = new PassThrough()
  let ended = false
  const write = (text: string) => {
    if (!ended && !body.destroyed) body.write(text)
  }
  const timer = setInterval(() => write(': keep-alive\n\n'), options.keepAliveMs ?? 15_000)
  timer.unref()
  const finish = (last: string) => {
    write(last)
    ended = true
    clearInterval(timer)
    if (!body.destroyed) body.end()
  }
  body.once('close', () => {
    ended = true
    clearInterval(timer)
  })
  return {
    body,
    // A comment is one line: a line break inside would end it and start a field.
    comment: (text) => write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`),
    data: (value) => write(`data: ${JSON.stringify(value)}\n\n`),
    done: () => finish('data: [DONE]\n\n'),
    end: () => finish(''),
    get ended() {
      return ended
    },
  }
}
