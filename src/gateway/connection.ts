/**
 * One WebSocket peer, as the sessions see it: send a frame (with a cap on what may sit
 * unsent for a reader that stopped), answer a bad frame with a coded error (closing after
 * too many), and close with a named code. Plus the `Hub`: this process's connections and
 * the one heartbeat timer that pings them all.
 */
import { EventEmitter } from 'node:events'
import type { WebSocket } from 'ws'
import type { ErrorCode } from '../errors.js'
import { CloseCode, errorFrame, type Decoded, type RequestId } from '../protocol/envelope.js'

/** The three things a session needs from a socket (hocuspocus style): tests can hand in anything with these. */
export interface PeerSocket {
  send(data: string): void
  close(code?: number, reason?: string): void
  readonly bufferedAmount: number
}

/** What a channel's session does with its socket's traffic (every socket route hands frames to one). */
export interface SocketSession {
  /** One incoming frame, as ws delivered it. */
  onMessage(data: unknown, isBinary: boolean): void
  /** The socket closed, whoever closed it. */
  onClose(code: number): void
}

export interface ConnectionOptions {
  /** Bytes that may sit unsent before the peer is closed as a slow consumer. */
  maxBufferedBytes: number
  /** Malformed frames tolerated before the peer is closed with ProtocolViolation. */
  maxBadFrames?: number
}

export class Connection {
  /** Monotonic milliseconds of the last pong (or of the connection's start). */
  lastPong: number
  /** Set once the connection closed or is closing; sends become no-ops. */
  closed = false
  /** True while the session has work in flight here (a drain closes the connection once it is false). */
  busy: () => boolean = () => false
  private badFrames = 0
  private readonly closeHandlers: Array<(code: number) => void> = []
  private pongHandler: (() => void) | undefined

  constructor(readonly socket: PeerSocket & Partial<Pick<WebSocket, 'ping' | 'terminate' | 'on'>>, readonly options: ConnectionOptions, readonly remoteAddress = '') {
    this.lastPong = performance.now()
  }

  /** Sends one frame. Returns false (and closes the peer) when its send buffer is over the cap. */
  send(frame: object): boolean {
    return this.sendText(JSON.stringify(frame))
  }

  sendText(text: string): boolean {
    if (this.closed) return false
    if (this.socket.bufferedAmount > this.options.maxBufferedBytes) {
      this.close(CloseCode.SlowConsumer, 'send buffer full: read faster')
      return false
    }
    this.socket.send(text)
    return true
  }

  /**
   * Decodes one incoming frame with a channel's decoder. A bad frame is answered here with its
   * coded error (and counted toward the limit); the session only ever sees valid messages.
   */
  decode<M>(decoder: (data: unknown, isBinary: boolean) => Decoded<M>, data: unknown, isBinary: boolean): M | undefined {
    const decoded = decoder(data, isBinary)
    if (decoded.ok) return decoded.message
    this.error(decoded.error.code, decoded.error.message, decoded.error.id)
    return undefined
  }

  /** Answers a command or a bad frame with a coded error; too many bad frames close the peer. */
  error(code: ErrorCode, message?: string, id?: RequestId, { bad = true } = {}): void {
    this.send(errorFrame(code, message, id))
    if (bad && ++this.badFrames > (this.options.maxBadFrames ?? 100)) {
      this.close(CloseCode.ProtocolViolation, 'too many malformed frames')
    }
  }

  close(code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    try {
      this.socket.close(code, reason.slice(0, 120))
    } catch {
      this.socket.terminate?.()
    }
    // A peer that stopped reading would never finish the closing handshake.
    const force = setTimeout(() => this.socket.terminate?.(), 2000)
    force.unref()
  }

  /** Registers work to run once when the socket has closed, whoever closed it. */
  onClose(handler: (code: number) => void): void {
    this.closeHandlers.push(handler)
  }

  /** Registers the one handler told of each pong (the worker channel's uptime evidence). */
  onPong(handler: () => void): void {
    this.pongHandler = handler
  }

  /** Called by the hub when the peer answered a ping. */
  ponged(at: number): void {
    this.lastPong = at
    this.pongHandler?.()
  }

  /** Called by the socket's close event. */
  closedBySocket(code: number): void {
    this.closed = true
    for (const handler of this.closeHandlers.splice(0)) handler(code)
  }
}

export interface HubEvents {
  /** A connection answered a ping: the evidence uptime is paid on. */
  pong: [Connection]
}

/**
 * This process's connections. One interval pings every connection; a connection that has
 * not answered for one and a half intervals is terminated at the next tick (so a silent
 * peer is gone within two intervals).
 */
export class Hub extends EventEmitter<HubEvents> {
  readonly connections = new Set<Connection>()
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly heartbeatMs: number) {
    super()
  }

  add(connection: Connection): void {
    this.connections.add(connection)
    connection.socket.on?.('pong', () => {
      connection.ponged(performance.now())
      this.emit('pong', connection)
    })
  }

  remove(connection: Connection): void {
    this.connections.delete(connection)
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.heartbeatMs)
    this.timer.unref()
  }

  /** One heartbeat round: drop the silent, ping the rest. */
  tick(now = performance.now()): void {
    const silentFor = this.heartbeatMs * 1.5
    for (const connection of this.connections) {
      if (now - connection.lastPong > silentFor) {
        connection.closed = true
        connection.socket.terminate?.()
        continue
      }
      try {
        connection.socket.ping?.()
      } catch { /* a socket closing under us */ }
    }
  }

  /** Closes every connection that is not busy (a drain); returns how many are still busy. */
  closeIdle(code: number, reason: string): number {
    let busy = 0
    for (const connection of this.connections) {
      if (connection.closed) continue
      if (connection.busy()) busy++
      else connection.close(code, reason)
    }
    return busy
  }

  /** Closes every connection with `code` (shutdown: GoingAway). */
  closeAll(code: number, reason: string): void {
    clearInterval(this.timer)
    this.timer = undefined
    for (const connection of this.connections) connection.close(code, reason)
  }
}

/** What a transport hands a socket's frames to: every session (worker, client, bot) is one. */
export interface SocketSession {
  /** One incoming frame, as ws delivered it. */
  onMessage(data: unknown, isBinary: boolean): void
  /** The socket closed, whoever closed it. */
  onClose(code: number): void
}
