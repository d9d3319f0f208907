/** The bot command channel: a WebSocket for programs holding an API key (docs/protocol-bot.md). */
import type { FastifyInstance } from 'fastify'
import { createBotChannel } from '../../gateway/bot-channel.js'
import type { Services } from '../../services.js'
import { registerSocketRoute } from '../socket-route.js'

export function registerBotRoutes(app: FastifyInstance, services: Services): void {
  const channel = createBotChannel({ ...services, config: services.config.bot })
  app.addHook('onClose', async () => channel.stop())

  registerSocketRoute(app, services, '/v1/bot', {
    scope: 'read',
    registeredOnly: true,
    summary: 'Bot command channel (WebSocket): transfers, balance, ledger, user lookup and account events, pipelined',
    open: (connection, principal, { log }) => channel.open(connection, principal, (error, message) => log.error({ err: error }, message)),
  })
}
