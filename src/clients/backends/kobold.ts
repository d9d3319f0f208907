/**
 * A KoboldAI-compatible backend (KoboldCpp and friends). Text streams from
 * `POST /api/extra/generate/stream` (SSE, `data: {"token": "..."}`); a server without that
 * route (404/405/501) gets the plain `POST /api/v1/generate`, whose whole text is yielded as
 * one piece, and is remembered as non-streaming for later jobs.
 */
import { randomUUID } from 'node:crypto'
import type { Backend, GenerateJob } from './backend.js'
import { BackendHttpError, bodyChunks, joinUrl, postJson } from './http.js'
import { probeGet } from './probe.js'
import { readSse } from './sse.js'

export interface KoboldBackendOptions {
  /** Base URL of the KoboldAI API, e.g. http://127.0.0.1:5001. */
  url: string
  /** Sent as a bearer token when the server is protected (KoboldCpp `--password`). */
  key?: string
  /** Force one mode; default: try streaming, fall back once. */
  stream?: boolean
}

/** Statuses meaning "this server has no streaming route". */
const NO_STREAM_ROUTE = new Set([404, 405, 501])

/** The KoboldAI body: sampler params first, so that they cannot override the job's own limits. */
export function koboldBody(job: GenerateJob, genkey: string): Record<string, unknown> {
  return { ...job.params, prompt: job.prompt, max_length: job.max_length, max_context_length: job.max_context_length, genkey }
}

export function createKoboldBackend(options: KoboldBackendOptions): Backend & { model(signal?: AbortSignal): Promise<string> } {
  const headers: Record<string, string> = options.key ? { authorization: `Bearer ${options.key}` } : {}
  let streaming = options.stream ?? true

  /** Best effort: ask KoboldCpp to stop this generation; aborting the fetch alone may not. */
  function abortOnServer(genkey: string): void {
    fetch(joinUrl(options.url, '/api/extra/abort'), {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ genkey }),
      signal: AbortSignal.timeout(5000),
    }).then((r) => r.body?.cancel(), () => {})
  }

  async function* stream(job: GenerateJob, genkey: string, signal: AbortSignal): AsyncGenerator<string> {
    const url = joinUrl(options.url, '/api/extra/generate/stream')
    const response = await postJson(url, koboldBody(job, genkey), { backend: 'kobold', headers, signal })
    for await (const event of readSse(bodyChunks(response))) {
      if (event.event !== 'message') continue
      let token: unknown
      try {
        token = (JSON.parse(event.data) as { token?: unknown }).token
      } catch {
        throw new Error(`kobold backend: ${url} sent an event that is not JSON: ${event.data.slice(0, 100)}`)
      }
      if (typeof token === 'string' && token !== '') yield token
    }
  }

  async function* whole(job: GenerateJob, genkey: string, signal: AbortSignal): AsyncGenerator<string> {
    const url = joinUrl(options.url, '/api/v1/generate')
    const response = await postJson(url, koboldBody(job, genkey), { backend: 'kobold', headers, signal })
    const body = await response.json().catch(() => undefined) as { results?: Array<{ text?: unknown }> } | undefined
    const text = body?.results?.[0]?.text
    if (typeof text !== 'string') throw new Error(`kobold backend: ${url} answered without results[0].text`)
    if (text !== '') yield text
  }

  return {
    name: 'kobold',
    /** `GET /api/v1/model`: up once it names the model it has loaded. */
    probe: (signal) => probeGet('kobold', options.url, '/api/v1/model', headers, signal, (body) => {
      const model = (body as { result?: unknown } | undefined)?.result
      return typeof model === 'string' && model !== '' && model !== 'ReadOnly' ? { state: 'up', model } : { state: 'down', reason: 'kobold backend: no model loaded yet' }
    }),

    async *generate(job, signal) {
      const genkey = `horde-${randomUUID()}`
      const onAbort = () => abortOnServer(genkey)
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        if (streaming) {
          try {
            yield* stream(job, genkey, signal)
            return
          } catch (error) {
            if (!(error instanceof BackendHttpError && NO_STREAM_ROUTE.has(error.status) && options.stream === undefined)) throw error
            streaming = false
          }
        }
        yield* whole(job, genkey, signal)
      } catch (error) {
        if (signal.aborted) return
        if (error instanceof BackendHttpError || (error as Error).message.startsWith('kobold backend:')) throw error
        throw new Error(`kobold backend: the response broke off: ${(error as Error).message}`)
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    },

    /** The model the server has loaded (`GET /api/v1/model`), e.g. `koboldcpp/LLaMA2-13B-Tiefighter`. */
    async model(signal) {
      const url = joinUrl(options.url, '/api/v1/model')
      let response: Response
      try {
        response = await fetch(url, { headers, signal })
      } catch (error) {
        throw new Error(`kobold backend: cannot reach ${url}: ${((error as Error & { cause?: Error }).cause ?? (error as Error)).message}`)
      }
      if (!response.ok) throw new BackendHttpError(`kobold backend: GET ${url} failed with HTTP ${response.status}`, response.status)
      const body = await response.json().catch(() => undefined) as { result?: unknown } | undefined
      if (typeof body?.result !== 'string' || body.result === '') throw new Error(`kobold backend: ${url} named no model`)
      return body.result
    },
  }
}
