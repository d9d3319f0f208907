/**
 * The load generator's side of a socket: a lean WebSocket peer (a hot-path callback, plus
 * `next` for set-up steps), the worker and client handshakes of protocol v1, and account
 * set-up over REST.
 */
import WebSocket from 'ws'
import { withTimeout } from './common.js'
import type { AnnounceSpec } from '../../src/protocol/worker.js'

type Frame = { type: string; [field: string]: any }
type Match = string | ((frame: Frame) => boolean)

export class Peer {
  /** Called with every parsed frame before any waiter sees it (the measured paths use this). */
  onFrame: ((frame: Frame) => void) | undefined
  /** Unclaimed frames, for `next`; bounded, and off once a scenario takes over with `onFrame`. */
  buffering = true
  private readonly buffered: Frame[] = []
  private readonly waiters: Array<{ test: (frame: Frame) => boolean; resolve(frame: Frame): void }> = []

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame
      this.onFrame?.(frame)
      const index = this.waiters.findIndex((w) => w.test(frame))
      if (index >= 0) this.waiters.splice(index, 1)[0].resolve(frame)
      else if (this.buffering) {
        this.buffered.push(frame)
        if (this.buffered.length > 1000) this.buffered.shift()
      }
    })
  }

  send(frame: object): void {
    this.ws.send(JSON.stringify(frame))
  }

  /** The first unclaimed frame matching, buffered or still to come. */
  next(match: Match, timeoutMs = 15_000): Promise<Frame> {
    const test = typeof match === 'string' ? (f: Frame) => f.type === match : match
    const index = this.buffered.findIndex(test)
    if (index >= 0) return Promise.resolve(this.buffered.splice(index, 1)[0])
    return withTimeout(new Promise<Frame>((resolve) => this.waiters.push({ test, resolve })), timeoutMs, `a frame matching ${typeof match === 'string' ? match : 'a predicate'}`)
  }

  close(): void {
    this.ws.terminate()
  }
}

export interface ConnectOptions {
  key?: string
  /** Source address on loopback (127.0.0.x), to spread many connections over address pairs. */
  localAddress?: string
}

export async function connect(url: string, options: ConnectOptions = {}): Promise<Peer> {
  const ws = new WebSocket(url, {
    headers: options.key ? { apikey: options.key } : {},
    perMessageDeflate: false,
    localAddress: options.localAddress,
  })
  const peer = new Peer(ws)
  ws.on('error', () => {})
  await withTimeout(new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
    ws.once('error', reject)
  }), 30_000, `connect ${url}`)
  return peer
}

/** An announcement with defaults filled in by the helper: the protocol's own shape. */
export type WorkerSpec = AnnounceSpec

/** A worker that is connected, authenticated and announced: the broker has said `ready`. */
export async function connectWorker(wsUrl: string, key: string, spec: WorkerSpec, options: { localAddress?: string } = {}): Promise<Peer> {
  const peer = await connect(`${wsUrl}/v1/worker`, { key, localAddress: options.localAddress })
  await peer.next('welcome')
  peer.send({ type: 'announce', id: 'a', models: [BENCH_MODEL], max_length: 512, max_context_length: 4096, ...spec })
  await peer.next('ready')
  return peer
}

export async function connectClient(wsUrl: string, key: string): Promise<Peer> {
  const peer = await connect(`${wsUrl}/v1/client`, { key })
  await peer.next('welcome')
  return peer
}

/** The model every bench request asks for and every bench worker serves. */
export const BENCH_MODEL = 'koboldcpp/Llama-3-8B'

export async function registerUser(baseUrl: string, username: string): Promise<{ id: number; key: string }> {
  const response = await fetch(`${baseUrl}/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username }),
  })
  const body = (await response.json()) as { id: number; apikey: string }
  if (response.status !== 201) throw new Error(`register ${username}: ${response.status} ${JSON.stringify(body)}`)
  return { id: body.id, key: body.apikey }
}
