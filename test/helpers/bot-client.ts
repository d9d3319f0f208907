/**
 * A real `ws` client for the bot channel: sends commands, matches replies by id (keeping
 * every reply, so a test can see a command answered twice), collects events, and checks
 * every frame the server sends against the protocol's schemas.
 */
import { WebSocket } from 'ws'
import { BotServerFrame, type ReadyFrame } from '../../src/protocol/bot.js'
import { bodyAjv } from '../../src/protocol/validate.js'
import type { TestLike } from './harness.js'

const checkServerFrame = bodyAjv.compile(BotServerFrame)

export type Reply = { type: 'result'; id: string | number; command: string; result: any } | { type: 'error'; id?: string | number; code: string; message: string; details?: any; retry_after_ms?: number }

export interface BotClient {
  readonly ws: WebSocket
  readonly ready: ReadyFrame
  /** Every frame received, in order. */
  readonly frames: any[]
  /** Event frames received, in order. */
  readonly events: any[]
  /** Replies by request id: more than one means a command was answered twice. */
  readonly replies: Map<string | number, Reply[]>
  /** Frames that did not match the protocol's schemas. */
  readonly invalid: Array<{ frame: unknown; errors: unknown }>
  /** Error frames without an id (bad frames, revocation). */
  readonly unaddressed: any[]
  send(frame: object | string): void
  /** Sends a command with a fresh id and waits for its reply. */
  request(command: Record<string, unknown>): Promise<Reply>
  /** Waits for the reply to `id` (already received or still to come). */
  reply(id: string | number, timeoutMs?: number): Promise<Reply>
  /** Waits for an event matching `match`. */
  nextEvent(match: (event: any) => boolean, timeoutMs?: number): Promise<any>
  /** Resolves with the close code and reason once the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>
  close(): Promise<void>
}

let sequence = 0

export async function openBot(t: TestLike, wsUrl: string, key: string, options: { bearer?: boolean } = {}): Promise<BotClient> {
  const headers: Record<string, string> = options.bearer ? { authorization: `Bearer ${key}` } : { apikey: key }
  const ws = new WebSocket(`${wsUrl}/v1/bot`, { headers })
  const frames: any[] = []
  const events: any[] = []
  const unaddressed: any[] = []
  const replies = new Map<string | number, Reply[]>()
  const invalid: Array<{ frame: unknown; errors: unknown }> = []
  const waiters = new Map<string | number, Array<(reply: Reply) => void>>()
  const eventWaiters = new Set<{ match: (event: any) => boolean; resolve: (event: any) => void }>()
  let readyResolve: (frame: ReadyFrame) => void
  const ready = new Promise<ReadyFrame>((resolve) => { readyResolve = resolve })

  ws.on('message', (data) => {
    const frame = JSON.parse(String(data))
    frames.push(frame)
    if (!checkServerFrame(frame)) invalid.push({ frame, errors: checkServerFrame.errors })
    if (frame.type === 'ready') readyResolve(frame)
    else if (frame.type === 'event') {
      events.push(frame)
      for (const waiter of eventWaiters) {
        if (waiter.match(frame)) {
          eventWaiters.delete(waiter)
          waiter.resolve(frame)
        }
      }
    } else if (frame.id === undefined) unaddressed.push(frame)
    else {
      const list = replies.get(frame.id) ?? []
      list.push(frame)
      replies.set(frame.id, list)
      for (const resolve of waiters.get(frame.id)?.splice(0) ?? []) resolve(frame)
    }
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) }))
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (req, res) => {
      req.destroy()
      reject(new Error(`upgrade refused: ${res.statusCode}`))
    })
  })
  t.teardown(() => { if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate() })

  const client: BotClient = {
    ws,
    ready: await withTimeout(ready, 5000, 'ready frame'),
    frames,
    events,
    replies,
    invalid,
    unaddressed,
    send(frame) {
      ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
    },
    request(command) {
      const id = `r${++sequence}`
      client.send({ ...command, id })
      return client.reply(id)
    },
    reply(id, timeoutMs = 10_000) {
      const got = replies.get(id)
      if (got) return Promise.resolve(got[0])
      const promise = new Promise<Reply>((resolve) => {
        const list = waiters.get(id) ?? []
        list.push(resolve)
        waiters.set(id, list)
      })
      return withTimeout(promise, timeoutMs, `reply to ${id}`)
    },
    nextEvent(match, timeoutMs = 5000) {
      const seen = events.find(match)
      if (seen) return Promise.resolve(seen)
      return withTimeout(new Promise((resolve) => eventWaiters.add({ match, resolve })), timeoutMs, 'event')
    },
    closed,
    async close() {
      ws.close(1000)
      await closed
    },
  }
  return client
}

/** Tries to open a bot socket with these headers; resolves with the HTTP status that refused it. */
export function refusedStatus(wsUrl: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsUrl}/v1/bot`, { headers })
    ws.once('open', () => {
      ws.terminate()
      reject(new Error('the upgrade was accepted'))
    })
    ws.once('unexpected-response', (req, res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk })
      res.on('end', () => {
        // With this listener attached, ws leaves the request to us: end it.
        req.destroy()
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined })
      })
    })
    ws.once('error', () => { /* unexpected-response reports it */ })
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms) }),
  ])
}
