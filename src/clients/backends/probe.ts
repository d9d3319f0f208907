/**
 * Is a backend up? Each backend answers with a `ProbeResult`: up (with the model it has
 * loaded, when it says), not up yet or down (worth waiting for: not listening, loading,
 * 5xx), or refused for a reason waiting cannot fix (a wrong key).
 */
import { joinUrl } from './http.js'

export type ProbeResult =
  | { state: 'up'; model?: string }
  /** Not reachable or not ready (loading a model, restarting): probe again later. */
  | { state: 'down'; reason: string }
  /** The backend refuses us (401/403): fix the configuration. */
  | { state: 'refused'; reason: string }

/** GETs `path` under `base` and classifies the answer; `read` turns a 2xx body into the result. */
export async function probeGet(backend: string, base: string, path: string, headers: Record<string, string>, signal: AbortSignal,
  read: (body: unknown) => ProbeResult): Promise<ProbeResult> {
  const url = joinUrl(base, path)
  let response: Response
  try {
    response = await fetch(url, { headers, signal })
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause
    return { state: 'down', reason: `${backend} backend: cannot reach ${url}: ${cause?.message ?? (error as Error).message}` }
  }
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel()
    return { state: 'refused', reason: `${backend} backend: ${url} refused the key (HTTP ${response.status}); check the backend key` }
  }
  if (!response.ok) {
    await response.body?.cancel()
    return { state: 'down', reason: `${backend} backend: GET ${url} answered HTTP ${response.status}${response.status === 503 ? ' (still loading?)' : ''}` }
  }
  const body = await response.json().catch(() => undefined)
  return read(body)
}
