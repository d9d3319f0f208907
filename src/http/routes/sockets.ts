/** The worker and client WebSocket channels: each socket becomes a session of the core. */
import type { FastifyInstance } from 'fastify'
import type { Core } from '../../core/core.js'
import { ClientSession, type ClientChannel } from '../../gateway/client-session.js'
import { WorkerSession } from '../../gateway/worker-session.js'
import { PROTOCOL_VERSION } from '../../protocol/envelope.js'
import type { Services } from '../../services.js'
import { registerSocketRoute } from '../socket-route.js'

export function registerSocketRoutes(app: FastifyInstance, services: Services, core: Core): void {
  const heartbeatMs = services.config.heartbeatSeconds * 1000
  const channel: ClientChannel = {
    generations: core.generations,
    positions: core.positions,
    submits: services.limits.submits,
    runningHere: (request) => core.runner.busyWith(request),
  }

  registerSocketRoute(app, services, '/v1/worker', {
    scope: 'work',
    registeredOnly: true,
    // A suspended owner's workers are stopped, and stay stopped while the suspension lasts.
    refuseSuspended: true,
    summary: 'Worker channel: announce, receive jobs, stream chunks (see docs/protocol.md)',
    open(connection, principal) {
      const session = new WorkerSession(connection, principal, core.workforce)
      connection.send({ type: 'welcome', protocol: PROTOCOL_VERSION, heartbeat_ms: heartbeatMs })
      return session
    },
  })

  registerSocketRoute(app, services, '/v1/client', {
    scope: 'generate',
    summary: 'Client channel: submit, attach, cancel; text streamed as it is made (see docs/protocol.md)',
    open(connection, principal, { ip }) {
      const session = new ClientSession(connection, principal, ip, channel)
      services.metrics.clientsConnected.inc()
      connection.onClose(() => services.metrics.clientsConnected.dec())
      connection.send({ type: 'welcome', protocol: PROTOCOL_VERSION, user: principal.username })
      return session
    },
  })
}
