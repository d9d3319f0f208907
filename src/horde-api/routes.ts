/**
 * The AI Horde v2 text API under `/api/v2`, so that the programs written for AI Horde
 * (SillyTavern, KoboldAI Lite, Agnaistic, horde-sdk, the KoboldAI Horde bridge, KoboldCpp's
 * worker, AI-Horde-Worker's scribe) work against this broker unchanged. One horde, two
 * doors: a v2 request is an ordinary request of `core.generations`, and a polling worker is a
 * `WorkerLink` of `core.workforce` (polling-link.ts), so v2 and native clients and workers
 * serve each other. The routes live in their own fastify scope: errors in AI Horde's shape
 * (`{message, rc}`), CORS for browser clients, bodies read leniently (body.ts), and keys only
 * from the `apikey` header (`0000000000` and no key are the Anonymous account; a login
 * cookie is not looked at). docs/horde-api.md says what is served and what differs.
 */
import type { FastifyInstance } from 'fastify'
import type { Core } from '../core/core.js'
import type { ModelRegistry } from '../economy/models.js'
import type { JobQueue } from '../queue/job-queue.js'
import type { Services } from '../services.js'
import { registerAccountRoutes } from './account-routes.js'
import { createBridges, type Bridges } from './bridges.js'
import { registerClientRoutes } from './client-routes.js'
import type { HordeApiContext } from './context.js'
import { toHordeError } from './errors.js'
import { createGroups } from './groups.js'
import { registerStatusRoutes } from './status-routes.js'
import { registerWorkerRoutes } from './worker-routes.js'

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'apikey, client-agent, content-type, idempotency-key',
  'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
  'access-control-max-age': '600',
}

export interface HordeApi {
  readonly bridges: Bridges
  /** Ends every polling worker's session (their jobs go back to the queue). */
  close(): void
}

export function registerHordeApiRoutes(app: FastifyInstance, options: { services: Services; core: Core; jobQueue: JobQueue; models: ModelRegistry }): HordeApi {
  const { services, core } = options
  const { config } = services
  const warn = (error: unknown) => services.log.warn({ err: error }, 'horde-api')
  const bridges = createBridges({
    workforce: core.workforce, jobTtlMs: config.hordeApi.jobTtlSeconds * 1000, idleMs: config.hordeApi.workerIdleSeconds * 1000, log: warn,
  })
  const groups = createGroups({ redis: services.redis, prefix: config.redisPrefix, ttlSeconds: config.limits.requestTtlSeconds + 86_400 })
  const ctx: HordeApiContext = { ...options, config, bridges, groups }

  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      reply.headers(CORS)
      // Keys only: a browser's login cookie must not act for it on a door that sends no CSRF token.
      request.cookies = {}
    })
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
      const answer = toHordeError(error)
      if (answer.status >= 500) request.log.error({ err: error }, 'horde-api route failed')
      return reply.status(answer.status).send(answer.body)
    })
    scope.setNotFoundHandler((request, reply) =>
      reply.status(404).send({ message: `No route ${request.method} ${request.url.split('?')[0]} in this horde's v2 API (docs/horde-api.md lists what is served)`, rc: 'NotFound' }))
    // Browsers ask before a cross-origin call that carries `apikey`.
    scope.options('/*', async (_request, reply) => reply.status(204).send())
    registerClientRoutes(scope, ctx)
    registerWorkerRoutes(scope, ctx)
    registerAccountRoutes(scope, ctx)
    registerStatusRoutes(scope, ctx)
  }, { prefix: '/api/v2' })

  return { bridges, close: () => bridges.close() }
}
