/**
 * The client side of generation, for the `horde` CLI, tests and pages: submit a prompt over
 * the client socket (`/v1/client`), follow its events, and end with one result. Written
 * against the WHATWG WebSocket surface (`addEventListener`, `send`, `close`), so a browser's
 * WebSocket fits as well as `ws`; the default opener is `ws`, which can send the `apikey`
 * header a browser cannot.
 */
import type { RequestView } from '../protocol/views.js'
import WebSocket from 'ws'
import type { GenerateBody } from '../protocol/client.js'
import { socketUrl } from './worker-client.js'

/** The part of a WebSocket this module uses; both `ws` and the browser's WebSocket have it. */
export interface SocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void
}

export type OpenSocket = (url: string, key: string | undefined) => SocketLike

/** Opens a client socket with `ws`; a refused upgrade becomes an error naming the status and the broker's reason. */
export const openNodeSocket: OpenSocket = (url, key) => {
  const ws = new WebSocket(url, { headers: key ? { apikey: key } : {} })
  ws.on('unexpected-response', (req, res) => {
    let text = ''
    res.setEncoding('utf8')
    res.on('data', (piece: string) => { if (text.length < 2000) text += piece })
    res.on('end', () => {
      let reason = text.slice(0, 200)
      try { reason = JSON.parse(text).error?.message ?? reason } catch { /* not JSON */ }
      // Emitted before the socket is torn down, so this is the error a listener sees first.
      ws.emit('error', new Error(`the broker refused the client socket: HTTP ${res.statusCode}${reason ? ` (${reason})` : ''}`))
      req.destroy()
      ws.terminate()
    })
  })
  ws.on('error', () => { /* reported through addEventListener; this keeps an unheard error from throwing */ })
  return ws as unknown as SocketLike
}

/** A queue update: `position` null when unknown (just requeued after a worker was lost). */
export interface QueuedEvent {
  position: number | null
  is_possible: boolean
  eta_seconds: number | null
  restarting?: boolean
  /** With `restarting`: `failed attempt: …` or `worker lost: …`. */
  reason?: string
}
export interface StartedEvent { attempt: number; worker: string; model: string }

export interface GenerationHandlers {
  onAccepted?(request: string, capability?: string): void
  onQueued?(event: QueuedEvent): void
  onStarted?(event: StartedEvent): void
  /** A piece of text of the current attempt, in order. */
  onChunk?(text: string, attempt: number): void
  /** A new attempt starts from scratch: text of earlier attempts is void. */
  onRestarted?(attempt: number): void
  /** The socket closed with a code worth retrying: a new one follows after a back-off. */
  onReconnecting?(code: number): void
  /** A new socket is following the request again. */
  onReconnected?(): void
}

export type GenerationResult =
  | { state: 'done'; request: string; text: string; tokens: number; kudos: number; worker?: string; model?: string }
  | { state: 'cancelled'; request: string; text: string; tokens: number; kudos: number }
  /** The broker gave up on the request (no worker finished it, or it expired). */
  | { state: 'failed'; request: string; code: string; message: string }
  /** The broker refused the request, or the socket failed; `request` is set when it was accepted. */
  | { state: 'error'; request?: string; code: string; message: string }

export interface GenerationOptions extends GenerationHandlers {
  /** Broker base URL (http(s):// or ws(s)://). */
  url: string
  /** API key; anonymous without one. */
  key?: string
  body: GenerateBody
  /** Aborting cancels the request on the broker; the result then says `cancelled`. */
  signal?: AbortSignal
  openSocket?: OpenSocket
  /** Follow the request across broker restarts (default true). */
  reconnect?: boolean
  /** How long to keep trying to reconnect after a close (default 120 s). */
  reconnectMs?: number
  /** Sent with the submit; a resubmit after a lost socket reuses it (default: a random one). */
  idempotencyKey?: string
}

const OPEN = 1
const SUBMIT_ID = 'submit'
/** Close codes after which the request is followed again on a new socket: going away, dropped, try later, internal. */
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013])

/**
 * Submits one prompt and follows it to the end. Resolves (never rejects) with the result;
 * the text of the final attempt is `result.text`, the same text the chunks spelled out
 * since the last `onRestarted`.
 *
 * It survives a broker restart: after a close with 1001/1006/1011/1012/1013 it opens a new
 * socket with back-off (for up to `reconnectMs`), attaches to the request (or, if the
 * first socket went before `accepted`, submits again with the same idempotency key, which
 * the broker answers with the first request), and goes on from what the `attached` view
 * holds, delivering only the text not yet delivered.
 */
export function generate(options: GenerationOptions): Promise<GenerationResult> {
  return new Promise((resolve) => {
    const open = options.openSocket ?? openNodeSocket
    const idempotencyKey = options.idempotencyKey ?? `client-${globalThis.crypto.randomUUID()}`
    let socket: SocketLike
    let request: string | undefined
    /** An anonymous request's capability (from `accepted`): a new socket needs it to attach or cancel. */
    let capability: { capability: string } | Record<string, never> = {}
    let attempt = 0
    /** Next chunk seq; null right after an attach (the view said how much text, not how many chunks). */
    let expectedSeq: number | null = 0
    /** Text of the current attempt delivered to onChunk. */
    let delivered = ''
    let settled = false
    let cancelSent = false
    let lastError: string | undefined
    let reconnectUntil = 0
    let tries = 0
    /** A broker that never answered is a wrong address, not a restart: only a socket that once opened is retried. */
    let everOpened = false

    const finish = (result: GenerationResult) => {
      if (settled) return
      settled = true
      options.signal?.removeEventListener('abort', cancel)
      if (socket.readyState === OPEN) socket.close(1000, 'done')
      resolve(result)
    }
    const fail = (code: string, message: string) => finish(request ? { state: 'error', request, code, message } : { state: 'error', code, message })

    function cancel(): void {
      if (settled || cancelSent || !request || socket.readyState !== OPEN) return
      cancelSent = true
      socket.send(JSON.stringify({ type: 'cancel', id: 'cancel', request, ...capability }))
    }
    options.signal?.addEventListener('abort', cancel, { once: true })

    function connect(): void {
      const current = open(socketUrl(options.url, '/v1/client'), options.key)
      socket = current
      let opened = false
      lastError = undefined
      current.addEventListener('open', () => {
        opened = true
        everOpened = true
        if (request) {
          current.send(JSON.stringify({ type: 'attach', id: 'attach', request, ...capability }))
        } else {
          const { prompt, ...rest } = options.body
          current.send(JSON.stringify({ type: 'submit', id: SUBMIT_ID, prompt, ...rest, idempotency_key: idempotencyKey }))
        }
      })
      // The first error says why (a refused upgrade names its status); the ones after it only say the socket went.
      current.addEventListener('error', (event) => { lastError ??= event?.message ?? event?.error?.message ?? 'the socket failed' })
      current.addEventListener('close', (event) => {
        if (settled || current !== socket) return
        const code = event?.code ?? 1006
        // A refused upgrade (a bad key) never reaches open: that is final, not a restart.
        const refused = !opened && lastError?.includes('refused the client socket')
        if (!refused && everOpened && RECONNECT_CODES.has(code) && options.reconnect !== false) {
          if (reconnectUntil === 0) reconnectUntil = Date.now() + (options.reconnectMs ?? 120_000)
          if (Date.now() < reconnectUntil) {
            options.onReconnecting?.(code)
            const delay = Math.min(5000, 250 * 2 ** tries++)
            setTimeout(connect, delay)
            return
          }
        }
        if (!opened && lastError) return fail('connection_failed', lastError)
        fail('disconnected', `the broker closed the socket before the request ended (${code}${event?.reason ? ` ${event.reason}` : ''})`)
      })
      current.addEventListener('message', (event) => {
        let frame: any
        try {
          frame = JSON.parse(typeof event.data === 'string' ? event.data : String(event.data))
        } catch {
          return fail('bad_frame', 'the broker sent a frame that is not JSON')
        }
        onFrame(frame)
      })
    }

    function newAttempt(next: number): void {
      if (attempt > 0) options.onRestarted?.(next)
      attempt = next
      expectedSeq = 0
      delivered = ''
    }

    function deliver(text: string): void {
      delivered += text
      options.onChunk?.(text, attempt)
    }

    /** Where the request stands after a reconnect: finish, or go on from the text not yet delivered. */
    function onAttached(view: any): void {
      tries = 0
      reconnectUntil = 0
      options.onReconnected?.()
      switch (view.state) {
        case 'done':
          return finish({ state: 'done', request: request!, text: view.text ?? '', tokens: view.tokens ?? 0, kudos: view.kudos ?? 0, worker: view.worker ?? undefined, model: view.model ?? undefined })
        case 'cancelled':
          return finish({ state: 'cancelled', request: request!, text: view.text ?? '', tokens: view.tokens ?? 0, kudos: view.kudos ?? 0 })
        case 'failed':
          return finish({ state: 'failed', request: request!, code: 'failed', message: view.error ?? 'the request failed' })
      }
      if (view.state === 'running' && typeof view.attempt === 'number') {
        if (view.attempt > attempt) newAttempt(view.attempt)
        const text: string = view.text ?? ''
        if (text.startsWith(delivered) && text.length > delivered.length) deliver(text.slice(delivered.length))
        expectedSeq = null
      }
    }

    function onFrame(frame: any): void {
      switch (frame.type) {
        case 'welcome':
          return
        case 'accepted':
          if (frame.id !== SUBMIT_ID) return
          if (typeof frame.capability === 'string') capability = { capability: frame.capability }
          if (!request) {
            request = String(frame.request)
            options.onAccepted?.(request, capability.capability)
          }
          // Aborted before the id was known: cancel now.
          if (options.signal?.aborted) cancel()
          return
        case 'attached':
          if (frame.request !== request) return
          return onAttached(frame)
        case 'queued':
          if (frame.request !== request) return
          options.onQueued?.({ position: frame.position ?? null, is_possible: frame.is_possible !== false, eta_seconds: frame.eta_seconds ?? null, restarting: frame.restarting === true, reason: frame.reason })
          return
        case 'restarted':
          if (frame.request !== request || frame.attempt <= attempt) return
          newAttempt(frame.attempt)
          return
        case 'started':
          if (frame.request !== request) return
          // The first attempt, or a restart whose `restarted` frame this socket missed.
          if (frame.attempt > attempt) newAttempt(frame.attempt)
          options.onStarted?.({ attempt: frame.attempt, worker: frame.worker, model: frame.model })
          return
        case 'chunk':
          if (frame.request !== request || frame.attempt !== attempt) return
          if (expectedSeq !== null && frame.seq !== expectedSeq) return
          expectedSeq = frame.seq + 1
          deliver(frame.text)
          return
        case 'done':
          if (frame.request !== request) return
          return finish({ state: 'done', request: frame.request, text: frame.text, tokens: frame.tokens, kudos: frame.kudos, worker: frame.worker, model: frame.model })
        case 'cancelled':
          if (frame.request !== request) return
          return finish({ state: 'cancelled', request: frame.request, text: frame.text ?? '', tokens: frame.tokens ?? 0, kudos: frame.kudos ?? 0 })
        case 'failed':
          if (frame.request !== request) return
          return finish({ state: 'failed', request: frame.request, code: frame.code, message: frame.message })
        case 'error':
          // A refused submit or attach ends it; a refused cancel (already finished) does not: the final frame follows.
          if (frame.id === SUBMIT_ID || frame.id === 'attach' || frame.id === undefined) return fail(frame.code, frame.message)
          return
        default:
          return
      }
    }

    connect()
  })
}

/** The broker's view of a request (`GET /v1/generate/:id`). */
export type RequestStatus = RequestView

/**
 * Fetches a request's status; throws an Error with the broker's code and message on a refusal.
 * An anonymous request also needs the capability its submission was answered with.
 */
export async function requestStatus(url: string, id: string, key?: string, capability?: string): Promise<RequestStatus> {
  const base = url.replace(/^ws/, 'http').replace(/\/+$/, '')
  const headers: Record<string, string> = {}
  if (key) headers.apikey = key
  if (capability) headers['x-request-capability'] = capability
  const response = await fetch(`${base}/v1/generate/${encodeURIComponent(id)}`, { headers })
  const body = await response.json().catch(() => undefined) as any
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${body?.error?.code ?? 'error'}: ${body?.error?.message ?? 'no details'}`)
  return body as RequestStatus
}
