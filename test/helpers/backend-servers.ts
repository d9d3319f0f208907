/**
 * Stand-in text-generation servers on loopback: a KoboldCpp-style API and an
 * OpenAI-compatible completions API. Their SSE streams go out in many small TCP writes
 * that cut events, lines and UTF-8 characters in the middle, as a real network may.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestLike } from './harness.js'
import { defer } from './harness.js'

export interface SeenRequest {
  method: string
  path: string
  headers: http.IncomingHttpHeaders
  body: any
}

export interface StandIn {
  url: string
  requests: SeenRequest[]
  /** Streams whose client went away before the server finished (an abort reached the server). */
  abandoned: number
  /** Writes made on stream responses (to check the stream really was split). */
  writes: number
  /** genkeys KoboldCpp was asked to abort. */
  aborts: string[]
}

export interface StandInOptions {
  /** Text pieces each generation streams. */
  tokens?: string[]
  /** Answer generation routes with this status and a JSON error body. */
  failStatus?: number
  /** Kobold: no `/api/extra/generate/stream` route (an older KoboldAI server). */
  noStream?: boolean
  /** Bytes per TCP write of a stream (default 5). */
  writeBytes?: number
  /** Pause between writes, ms (default 2); a long one lets a test abort mid-stream. */
  writeDelayMs?: number
  /** Kobold: the model `/api/v1/model` names. */
  model?: string
}

export const DEFAULT_TOKENS = ['Hello', ', ', 'wörld', ' — ✓', '\n', 'the ', 'end']

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function readJson(req: http.IncomingMessage): Promise<any> {
  let text = ''
  for await (const piece of req) text += piece
  try { return text ? JSON.parse(text) : undefined } catch { return text }
}

/** Writes `payload` in slices of `size` bytes, pausing between them; stops if the client left. */
async function writeSplit(state: StandIn, res: http.ServerResponse, payload: string, size: number, delayMs: number): Promise<boolean> {
  const bytes = Buffer.from(payload, 'utf8')
  let gone = false
  res.on('close', () => { gone = !res.writableFinished })
  for (let at = 0; at < bytes.length; at += size) {
    if (gone || res.destroyed) return false
    res.write(bytes.subarray(at, at + size))
    state.writes++
    await sleep(delayMs)
  }
  return !gone && !res.destroyed
}

async function startServer(t: TestLike, handle: (state: StandIn, req: http.IncomingMessage, res: http.ServerResponse, body: any) => Promise<void>): Promise<StandIn> {
  const state: StandIn = { url: '', requests: [], abandoned: 0, writes: 0, aborts: [] }
  const server = http.createServer((req, res) => {
    void (async () => {
      const body = await readJson(req)
      state.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      res.socket?.setNoDelay(true)
      await handle(state, req, res, body)
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  defer(t, () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return state
}

function sse(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
}

function fail(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

/** A KoboldCpp-style server: `/api/extra/generate/stream`, `/api/v1/generate`, `/api/v1/model`, `/api/extra/abort`. */
export function startKoboldStandIn(t: TestLike, options: StandInOptions = {}): Promise<StandIn> {
  const tokens = options.tokens ?? DEFAULT_TOKENS
  return startServer(t, async (state, req, res, body) => {
    const path = req.url ?? ''
    if (req.method === 'GET' && path === '/api/v1/model') return fail(res, 200, { result: options.model ?? 'koboldcpp/Stand-In-7B' })
    if (req.method === 'POST' && path === '/api/extra/abort') {
      state.aborts.push(body?.genkey)
      return fail(res, 200, { success: 'true' })
    }
    if (req.method === 'POST' && path === '/api/extra/generate/stream' && !options.noStream) {
      if (options.failStatus) return fail(res, options.failStatus, { detail: { msg: 'the model fell over', type: 'service_unavailable' } })
      sse(res)
      // KoboldCpp's framing, with a comment line and CRLF line ends thrown in.
      const payload = tokens.map((token, i) => (i === 2 ? ': keep-alive\r\n' : '') + `event: message\r\ndata: ${JSON.stringify({ token, finish_reason: null })}\r\n\r\n`).join('')
      const finished = await writeSplit(state, res, payload, options.writeBytes ?? 5, options.writeDelayMs ?? 2)
      if (!finished) { state.abandoned++; return }
      res.end(`event: message\ndata: ${JSON.stringify({ token: '', finish_reason: 'length' })}\n\n`)
      return
    }
    if (req.method === 'POST' && path === '/api/v1/generate') {
      if (options.failStatus) return fail(res, options.failStatus, { detail: { msg: 'the model fell over', type: 'service_unavailable' } })
      return fail(res, 200, { results: [{ text: tokens.join('') }] })
    }
    fail(res, 404, { detail: 'Not Found' })
  })
}

/** An OpenAI-compatible server: `POST /v1/completions` with `stream: true`. */
export function startOpenAIStandIn(t: TestLike, options: StandInOptions = {}): Promise<StandIn> {
  const tokens = options.tokens ?? DEFAULT_TOKENS
  return startServer(t, async (state, req, res, body) => {
    if (req.method !== 'POST' || req.url !== '/v1/completions') return fail(res, 404, { error: { message: `no route ${req.url}` } })
    if (options.failStatus) return fail(res, options.failStatus, { error: { message: 'the GPU is on fire', type: 'server_error' } })
    if (body?.stream !== true) return fail(res, 400, { error: { message: 'this stand-in only streams' } })
    sse(res)
    const payload = tokens.map((text, i) => `data: ${JSON.stringify({ id: 'cmpl-1', object: 'text_completion', choices: [{ index: 0, text, finish_reason: i === tokens.length - 1 ? 'length' : null }] })}\n\n`).join('')
    const finished = await writeSplit(state, res, payload + 'data: [DONE]\n\n', options.writeBytes ?? 5, options.writeDelayMs ?? 2)
    if (!finished) { state.abandoned++; return }
    res.end()
  })
}
