/**
 * A Server-Sent Events reader for backend streams. Bytes arrive in whatever pieces TCP
 * delivers, so a UTF-8 character, a line or an event may be split across reads; this
 * reassembles them per the WHATWG "event stream interpretation" rules:
 * lines end in CRLF, LF or CR; `:` starts a comment; `data` lines of one event are joined
 * with LF; a blank line dispatches the event.
 */

export interface SseEvent {
  /** The `event:` field, `message` when absent. */
  event: string
  /** The `data:` lines, joined with LF. */
  data: string
  /** The last `id:` field seen, if any. */
  id?: string
}

/**
 * Yields the events of a byte stream. A final event not followed by a blank line is still
 * yielded (the spec drops it; some servers end the stream without one, and dropping the
 * last token would truncate the text).
 */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder('utf-8')
  let buffer = ''
  let first = true
  /** A CR ended the previous read: a LF starting this one belongs to the same line end. */
  let pendingCr = false
  let event = ''
  let data: string[] = []
  let id: string | undefined

  const line = (text: string): SseEvent | undefined => {
    if (text === '') {
      if (data.length === 0) { event = ''; return undefined }
      const out: SseEvent = { event: event || 'message', data: data.join('\n') }
      if (id !== undefined) out.id = id
      event = ''
      data = []
      return out
    }
    if (text.startsWith(':')) return undefined
    const colon = text.indexOf(':')
    const field = colon === -1 ? text : text.slice(0, colon)
    let value = colon === -1 ? '' : text.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') event = value
    else if (field === 'data') data.push(value)
    else if (field === 'id' && !value.includes('\0')) id = value
    // `retry` and unknown fields are ignored: a backend stream is never reconnected.
    return undefined
  }

  const drain = function* (): Generator<SseEvent> {
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const ch = buffer.charCodeAt(i)
      if (ch !== 10 && ch !== 13) continue
      const found = line(buffer.slice(start, i))
      if (found) yield found
      if (ch === 13) {
        if (i + 1 < buffer.length) { if (buffer.charCodeAt(i + 1) === 10) i++ } else pendingCr = true
      }
      start = i + 1
    }
    buffer = buffer.slice(start)
  }

  for await (const bytes of body) {
    let text = decoder.decode(bytes, { stream: true })
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      first = false
    }
    if (pendingCr && text.length > 0) {
      pendingCr = false
      if (text.charCodeAt(0) === 10) text = text.slice(1)
    }
    buffer += text
    yield* drain()
  }
  buffer += decoder.decode()
  yield* drain()
  if (buffer !== '') {
    const found = line(buffer)
    if (found) yield found
  }
  const last = line('')
  if (last) yield last
}
