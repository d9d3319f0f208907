/**
 * `/v1/status/live`: a socket that gets a status snapshot on connect and every
 * STATUS_PUSH_SECONDS after. Public, like the status page and `GET /v1/status`, which
 * serves the same snapshot once.
 */
import type { FastifyInstance } from 'fastify'
import type { Services } from '../../services.js'
import { createStatusFeed } from '../../web/status-feed.js'
import { registerSocketRoute } from '../socket-route.js'

export function registerStatusRoutes(app: FastifyInstance, services: Services): void {
  const feed = createStatusFeed(services.status, services.config.web.statusPushSeconds * 1000)
  app.addHook('onClose', async () => feed.stop())

  registerSocketRoute(app, services, '/v1/status/live', {
    scope: 'read',
    summary: 'Live status: `{ type: "status", status }` on connect and every few seconds',
    open(connection) {
      void feed.frame().then((frame) => connection.sendText(frame), () => connection.error('unavailable', undefined, undefined, { bad: false }))
      const unsubscribe = feed.subscribe((frame) => connection.sendText(frame))
      return {
        onMessage() {
          connection.error('unknown_type', 'This channel only pushes status; it takes no commands')
        },
        onClose() {
          unsubscribe()
        },
      }
    },
  })
}
