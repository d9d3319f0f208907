/**
 * The HTTP side shared by the backend adapters: one POST with a JSON body through the
 * global fetch, the caller's AbortSignal attached, and every failure turned into an Error
 * whose message says which backend, which URL and what went wrong.
 */

/** An HTTP error status from a backend; `status` lets a caller fall back (404 on an optional route). */
export class BackendHttpError extends Error {
  constructor(message: string, readonly status: number) {
    super(message)
    this.name = 'BackendHttpError'
  }
}

/** Joins a base URL and a path without doubling or dropping the slash between them. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path
}

/** The most useful line of an error body: JSON `error.message`, `detail.msg`, `detail`, `message`, or the text itself. */
export function errorDetail(text: string): string {
  const trimmed = text.trim()
  if (!trimmed) return ''
  try {
    const body = JSON.parse(trimmed) as any
    const candidates = [body?.error?.message, body?.error, body?.detail?.msg, body?.detail, body?.message]
    const found = candidates.find((c) => typeof c === 'string' && c.length > 0)
    if (found) return String(found).slice(0, 300)
  } catch { /* not JSON */ }
  return trimmed.slice(0, 300)
}

export interface PostOptions {
  /** Names the backend in error messages (`kobold`, `openai`). */
  backend: string
  headers?: Record<string, string>
  signal: AbortSignal
}

/**
 * POSTs `body` as JSON and returns the response once its status is 2xx. Throws
 * `BackendHttpError` for an error status and a plain Error when the backend cannot be
 * reached; an abort surfaces as the fetch's AbortError, for the caller to recognise.
 */
export async function postJson(url: string, body: unknown, options: PostOptions): Promise<Response> {
  let response: Response
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...options.headers },
      body: JSON.stringify(body),
      signal: options.signal,
    })
  } catch (error) {
    if (options.signal.aborted) throw error
    const cause = (error as Error & { cause?: Error }).cause
    throw new Error(`${options.backend} backend: cannot reach ${url}: ${cause?.message ?? (error as Error).message}`)
  }
  if (!response.ok) {
    const text = await response.text().catch(() => '')
    const detail = errorDetail(text)
    throw new BackendHttpError(`${options.backend} backend: POST ${url} failed with HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${detail ? `: ${detail}` : ''}`, response.status)
  }
  return response
}

/** The response body as an async iterable of byte chunks (a fetch body is one in Node 20). */
export function bodyChunks(response: Response): AsyncIterable<Uint8Array> {
  if (!response.body) throw new Error('the backend sent no body')
  return response.body as unknown as AsyncIterable<Uint8Array>
}
