/**
 * Registers a WebSocket channel: authentication and per-address limits on the upgrade
 * (refused with an HTTP error before any socket exists), then the socket is wrapped in a
 * `Connection` and handed to the session. Messages are attached synchronously, so no early
 * frame is lost.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import type { Principal, Scope } from '../accounts/accounts.js'
import { BrokerError } from '../errors.js'
import { Connection, type SocketSession } from '../gateway/connection.js'
import type { Services } from '../services.js'
import { isPending } from '../limits/ports.js'
import { CloseCode, errorFrame } from '../protocol/envelope.js'

export type { SocketSession }

export interface SocketRouteOptions {
  /** Scope the key needs; the upgrade is refused (403) without it. */
  scope: Scope
  /** Refuse the Anonymous account (401). */
  registeredOnly?: boolean
  /** Refuse a suspended account (403 `user_suspended`). */
  refuseSuspended?: boolean
  /** Summary for the OpenAPI document. */
  summary: string
  open(connection: Connection, principal: Principal, upgrade: UpgradeFacts): SocketSession
}

/**
 * What a session may keep of its upgrade request. Not the request itself: a socket lives for
 * hours, and holding the request would hold its raw request, response and headers with it.
 */
export interface UpgradeFacts {
  /** The client's address (behind `TRUST_PROXY`, the forwarded one). */
  ip: string
  /** The app's logger: a per-request child logger would be one more object kept per socket. */
  log: FastifyBaseLogger
}

export function registerSocketRoute(app: FastifyInstance, services: Services, path: string, options: SocketRouteOptions): void {
  const { hub, config, accounts } = services
  // Shared by every channel (and, with CLUSTER=on, by every process).
  const { upgrades, connections } = services.limits
  app.get(path, {
    websocket: true,
    schema: { summary: options.summary, tags: ['websocket'] },
    preValidation: async (request) => {
      if (services.draining) throw new BrokerError('unavailable', 'This broker process is draining; connect again (to another process, if there is one)')
      const upgrade = upgrades.take(request.ip)
      if (!(isPending(upgrade) ? await upgrade : upgrade).ok) throw new BrokerError('too_many_connections', 'Too many connection attempts from this address; retry later')
      const principal = request.principal
      if (options.registeredOnly && principal.anonymous) throw new BrokerError('unauthorized', 'This channel needs an API key')
      if (!principal.scopes.has(options.scope)) throw new BrokerError('insufficient_scope', `This API key lacks the ${options.scope} scope`)
      if (options.refuseSuspended && principal.suspended) throw new BrokerError('user_suspended')
      // The last check before the handler. The slot belongs to the TCP connection and is
      // released when it closes, however it ends: a normal close, a refusal by a later hook,
      // or a handshake that ws aborts (no Sec-WebSocket-Key, say) before any handler runs.
      const admission = connections.acquire(request.ip)
      if (!(isPending(admission) ? await admission : admission)) throw new BrokerError('too_many_connections')
      const address = request.ip
      let held = true
      const release = () => {
        if (!held) return
        held = false
        connections.release(address)
      }
      const raw = request.raw.socket
      if (raw.destroyed) release()
      else raw.once('close', release)
    },
  }, (socket, request) => {
    // The WebSocket plugin routes the upgrade through a stand-in response that would stay the
    // TCP socket's current message for the socket's whole life, holding the request, the reply
    // and the headers (a heap snapshot of idle workers showed one set kept per socket). It is
    // never sent: detach it. `wire` is handed what the socket needs, never `request` itself.
    const tcp = request.raw.socket as typeof request.raw.socket & { _httpMessage?: ServerResponse | null }
    tcp._httpMessage?.detachSocket(tcp)
    wire(socket, request.principal, { ip: request.ip, log: app.log })
  })

  function wire(socket: WebSocket, principal: Principal, upgrade: UpgradeFacts): void {
    const connection = new Connection(socket, { maxBufferedBytes: config.limits.sendBufferBytes }, upgrade.ip)
    hub.add(connection)
    const session = options.open(connection, principal, upgrade)
    // A revoked key ends every socket it opened, whatever the channel (the bot channel also
    // tells the bot why first). With CLUSTER=on a revocation made on another process arrives
    // on the same event (src/cluster/account-bridge.ts).
    const keyId = principal.keyId
    const onRevoked = (revoked: number) => {
      if (revoked !== keyId || connection.closed) return
      connection.send(errorFrame('key_revoked'))
      connection.close(CloseCode.Unauthorized, 'key_revoked')
    }
    if (keyId !== null) {
      accounts.events.on('revoked', onRevoked)
      connection.onClose(() => accounts.events.off('revoked', onRevoked))
    }
    socket.on('message', (data, isBinary) => {
      try {
        session.onMessage(data, isBinary)
      } catch (error) {
        upgrade.log.error({ err: error }, 'session failed on a frame')
        connection.error('internal', undefined, undefined, { bad: false })
      }
    })
    // The plugin's own error listener closes over the request and reply, which would keep
    // them for the socket's life; this one replaces it ('close' follows every error).
    socket.removeAllListeners('error')
    socket.on('error', (error) => upgrade.log.debug({ err: error }, 'socket error'))
    socket.on('close', (code) => {
      hub.remove(connection)
      connection.closedBySocket(code)
      session.onClose(code)
    })
  }
}
