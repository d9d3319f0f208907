/**
 * Builds the fastify app: the only place (with its routes) that imports fastify. It is handed
 * the broker's services and turns their coded errors into HTTP answers.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifySwagger from '@fastify/swagger'
import fastifyWebsocket from '@fastify/websocket'
import fastifyRateLimit from '@fastify/rate-limit'
import { ERRORS, BrokerError, isBrokerError, type ErrorCode } from '../errors.js'
import type { Principal, Scope } from '../accounts/accounts.js'
import { requireUser } from './guards.js'
import { bodyAjv, paramsAjv } from '../protocol/validate.js'
import type { Services } from '../services.js'
import { registerAccountRoutes } from './routes/accounts.js'
import { registerBotRoutes } from './routes/bot.js'
import { registerKudosRoutes } from './routes/kudos.js'
import { registerOpsRoutes } from './routes/ops.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: resolved from `apikey` or `Authorization: Bearer`, anonymous without a key. */
    principal: Principal
  }
  interface FastifyContextConfig {
    /** A registered caller is needed (`true`), with this scope if one is named; checked before the body is validated. */
    auth?: true | Scope
  }
}

export interface AppHooks {
  /** Registers more routes (gateway, pages) on the same app, inside the same error handling. */
  extend?: (app: FastifyInstance) => Promise<void> | void
}

export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.apikey
  if (typeof header === 'string' && header !== '') return header
  const auth = request.headers.authorization
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim()
  return undefined
}

export async function buildApp(services: Services, hooks: AppHooks = {}): Promise<FastifyInstance> {
  const { config, metrics } = services
  const app = Fastify({
    loggerInstance: services.log as unknown as FastifyBaseLogger,
    bodyLimit: config.limits.maxFrameBytes,
    trustProxy: false,
    return503OnClosing: true,
    forceCloseConnections: true,
  })

  // Bodies are validated strictly (no coercion, no silently dropped fields); query strings
  // and path parameters are text by nature and are coerced to their declared types.
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : paramsAjv.compile(schema))

  // JSON only: a text body would otherwise reach the schema as a string.
  app.removeContentTypeParser('text/plain')

  // Before the authentication hook: the plugin's own onRequest hook marks upgrade requests,
  // and only marked ones get their socket destroyed when refused. A key refused in a hook
  // registered earlier would leave the upgrade socket open, unread, for ever.
  await app.register(fastifyWebsocket, {
    options: { maxPayload: config.limits.maxFrameBytes, perMessageDeflate: false },
  })

  app.decorateRequest('principal', undefined as unknown as Principal)
  // Authentication runs at preValidation, after body limits, and before the body is checked
  // against its schema, so that callers without the right key learn nothing about it.
  app.addHook('preValidation', async (request) => {
    request.principal = services.accounts.authenticate(presentedKey(request))
    const auth = request.routeOptions.config?.auth
    if (auth) requireUser(request, auth === true ? undefined : auth)
  })
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode })
  })

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number; validation?: unknown }, request, reply) => {
    const answer = toBrokerError(error)
    if (answer.status >= 500) request.log.error({ err: error }, 'request failed')
    return reply.status(answer.status).send({ error: answer.toJSON() })
  })
  app.setNotFoundHandler((request, reply) => reply.status(404).send({ error: { code: 'not_found', message: `No route ${request.method} ${request.url.split('?')[0]}` } }))

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'horde-broker', version: '1', description: 'Real-time job broker for a volunteer text-generation horde run on kudos.' },
      components: { securitySchemes: { apikey: { type: 'apiKey', in: 'header', name: 'apikey' } } },
      security: [{ apikey: [] }],
    },
  })
  await app.register(fastifyRateLimit, {
    global: false,
    redis: services.redis,
    nameSpace: `${config.redisPrefix}:ratelimit:`,
    // After authentication, so that limits can be per user.
    hook: 'preHandler',
    errorResponseBuilder: (_request, context) => ({ statusCode: 429, code: 'FST_ERR_RATE_LIMIT', message: `Rate limit: at most ${context.max} per ${context.after}` }),
  })

  registerOpsRoutes(app, services)
  registerAccountRoutes(app, services)
  registerKudosRoutes(app, services)
  registerBotRoutes(app, services)
  if (hooks.extend) await hooks.extend(app)
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  return app
}

/** Maps anything thrown in a route to a coded error; 5xx messages are never shown. */
export function toBrokerError(error: Error & { code?: string; statusCode?: number; validation?: unknown }): BrokerError {
  if (isBrokerError(error)) return error
  if (error.validation) return new BrokerError('validation_failed', error.message)
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BrokerError('invalid_json', error.message)
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BrokerError('payload_too_large')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BrokerError('unsupported_media_type')
    case 'FST_ERR_RATE_LIMIT':
      return new BrokerError('too_many_requests', error.message)
  }
  if (error instanceof SyntaxError) return new BrokerError('invalid_json', error.message)
  const status = error.statusCode ?? 500
  if (status === 429) return new BrokerError('too_many_requests', error.message)
  if (status >= 400 && status < 500) {
    const code = (Object.keys(ERRORS) as ErrorCode[]).find((c) => ERRORS[c].status === status) ?? 'bad_request'
    return new BrokerError(code, error.message)
  }
  return new BrokerError('internal')
}
