/**
 * An OpenAI-compatible completions backend (vLLM, llama.cpp server, text-generation-webui,
 * hosted APIs): `POST /v1/completions` with `stream: true`, text taken from the SSE lines
 * `data: {"choices":[{"text":"..."}]}` until `data: [DONE]`.
 */
import type { Backend, GenerateJob } from './backend.js'
import { BackendHttpError, bodyChunks, joinUrl, postJson } from './http.js'
import { probeGet } from './probe.js'
import { readSse } from './sse.js'

export interface OpenAIBackendOptions {
  /** Base URL, with or without a trailing `/v1`, e.g. http://127.0.0.1:8000. */
  url: string
  /** Sent as `Authorization: Bearer <key>`. */
  key?: string
  /** Model name the server knows; default: the horde model name the job was matched on. */
  model?: string
}

/**
 * Horde (KoboldAI) sampler names to completions-API names. The standard ones first; the
 * rest are the extensions vLLM and llama.cpp accept. Anything not listed is dropped: a
 * strict server refuses unknown fields.
 */
export const OPENAI_PARAMS: Readonly<Record<string, string>> = Object.freeze({
  temperature: 'temperature',
  top_p: 'top_p',
  frequency_penalty: 'frequency_penalty',
  presence_penalty: 'presence_penalty',
  stop_sequence: 'stop',
  sampler_seed: 'seed',
  seed: 'seed',
  n: 'n',
  top_k: 'top_k',
  min_p: 'min_p',
  typical: 'typical_p',
  rep_pen: 'repetition_penalty',
})

export function openAIBody(job: GenerateJob, model: string): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(job.params)) {
    const mapped = OPENAI_PARAMS[name]
    if (mapped && value !== null && value !== undefined) body[mapped] = value
  }
  // One completion only: the text of several would interleave in one stream.
  body.n = 1
  return { ...body, model, prompt: job.prompt, max_tokens: job.max_length, stream: true }
}

export function createOpenAIBackend(options: OpenAIBackendOptions): Backend {
  const url = joinUrl(options.url.replace(/\/v1\/*$/, ''), '/v1/completions')
  const headers: Record<string, string> = options.key ? { authorization: `Bearer ${options.key}` } : {}
  return {
    name: 'openai',
    /** `GET /v1/models`: up when it lists models (a server without the route still answers). */
    probe: (signal) => probeGet('openai', options.url.replace(/\/v1\/*$/, ''), '/v1/models', headers, signal, (body) => {
      const ids = (body as { data?: Array<{ id?: unknown }> } | undefined)?.data?.map((m) => m.id).filter((id): id is string => typeof id === 'string') ?? []
      return ids.length ? { state: 'up', model: ids[0] } : { state: 'up' }
    }),
    async *generate(job, signal) {
      try {
        const response = await postJson(url, openAIBody(job, options.model ?? job.model), { backend: 'openai', headers, signal })
        for await (const event of readSse(bodyChunks(response))) {
          if (event.data === '[DONE]') return
          let body: { choices?: Array<{ text?: unknown }>; error?: { message?: unknown } | string }
          try {
            body = JSON.parse(event.data)
          } catch {
            throw new Error(`openai backend: ${url} sent an event that is not JSON: ${event.data.slice(0, 100)}`)
          }
          if (body.error) {
            const message = typeof body.error === 'string' ? body.error : String(body.error.message ?? 'unknown error')
            throw new Error(`openai backend: the server reported an error mid-stream: ${message}`)
          }
          const text = body.choices?.[0]?.text
          if (typeof text === 'string' && text !== '') yield text
        }
      } catch (error) {
        if (signal.aborted) return
        if (error instanceof BackendHttpError || (error as Error).message.startsWith('openai backend:')) throw error
        throw new Error(`openai backend: the response broke off: ${(error as Error).message}`)
      }
    },
  }
}
