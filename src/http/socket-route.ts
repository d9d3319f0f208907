/**
 * Registers a WebSocket channel: authentication and per-address limits on the upgrade
 * (refused with an HTTP error before any socket exists), then the socket is wrapped in a
 * `Connection` and handed to the session. Messages are attached synchronously, so no early
 * frame is lost.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
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
  open(connection: Connection, principal: Principal, request: FastifyRequest): SocketSession
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
    const connection = new Connection(socket, { maxBufferedBytes: config.limits.sendBufferBytes }, request.ip)
    hub.add(connection)
    const session = options.open(connection, request.principal, request)
    // A revoked key ends every socket it opened, whatever the channel (the bot channel also
    // tells the bot why first). In-process: another broker process learns of it only when
    // the key is next presented.
    const keyId = request.principal.keyId
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
        request.log.error({ err: error }, 'session failed on a frame')
        connection.error('internal', undefined, undefined, { bad: false })
      }
    })
    socket.on('error', () => { /* 'close' follows */ })
    socket.on('close', (code) => {
      hub.remove(connection)
      connection.closedBySocket(code)
      session.onClose(code)
    })
  })
}
