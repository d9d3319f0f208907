/**
 * Builds the fastify app: the only place (with its routes) that imports fastify. It is handed
 * the broker's services and turns their coded errors into HTTP answers.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySwagger from '@fastify/swagger'
import fastifyWebsocket from '@fastify/websocket'
import fastifyRateLimit from '@fastify/rate-limit'
import { capConnections } from './connection-cap.js'
import { BrokerError } from '../errors.js'
import { toBrokerError } from './error-answer.js'
import { SCOPES, type Principal, type Scope } from '../accounts/accounts.js'
import { requireUser } from './guards.js'
import { bodyAjv, paramsAjv } from '../protocol/validate.js'
import type { Services } from '../services.js'
import { registerAccountRoutes } from './routes/accounts.js'
import { registerBotRoutes } from './routes/bot.js'
import { registerKudosRoutes } from './routes/kudos.js'
import { registerOpsRoutes } from './routes/ops.js'
import { registerHistoryRoutes } from './routes/history.js'
import { registerStatusRoutes } from './routes/status.js'
import { registerWebRoutes } from './routes/web.js'
import { createSessions, isSafeMethod, type Sessions } from './session.js'
import { createBadKeyThrottle } from './bad-keys.js'
import { contentSecurityPolicy } from '../web/security.js'
import { errorPage } from '../web/pages/login.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who is calling: resolved from `apikey` or `Authorization: Bearer`; without a key, from a
     * valid session cookie; anonymous without either.
     */
    principal: Principal
  }
  interface FastifyContextConfig {
    /** A registered caller is needed (`true`), with this scope if one is named; checked before the body is validated. */
    auth?: true | Scope
  }
}

/** A WebSocket upgrade (the only requests whose Origin the browser does not police for us). */
function isUpgrade(request: FastifyRequest): boolean {
  return typeof request.headers.upgrade === 'string' && request.headers.upgrade.toLowerCase() === 'websocket'
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
    // request.ip (every per-address limit) is the TCP peer unless it is a proxy named in TRUST_PROXY.
    trustProxy: config.web.trustProxy.length > 0 ? [...config.web.trustProxy] : false,
    return503OnClosing: true,
    forceCloseConnections: true,
    // A client that trickles its headers or body is cut off instead of holding the
    // connection: the clock stops once the request has arrived (a long poll may wait longer).
    requestTimeout: config.limits.httpRequestTimeoutMs,
    http: {
      headersTimeout: Math.min(10_000, config.limits.httpRequestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, config.limits.httpRequestTimeoutMs / 4)),
    },
  })
  capConnections(app.server, config.limits.httpConnectionsPerIp, config.web.trustProxy)

  // Bodies are validated strictly (no coercion, no silently dropped fields); query strings
  // and path parameters are text by nature and are coerced to their declared types.
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : paramsAjv.compile(schema))

  // JSON only: a text body would otherwise reach the schema as a string.
  app.removeContentTypeParser('text/plain')

  // Parses cookies (onRequest) before the principal is resolved below.
  await app.register(fastifyCookie, { secret: config.web.sessionSecret })
  // Registered before the auth hook so that its own onRequest hook (which marks upgrades and
  // destroys their socket after an error answer) runs even when authentication refuses one.
  await app.register(fastifyWebsocket, {
    options: { maxPayload: config.limits.maxFrameBytes, perMessageDeflate: false },
  })
  const sessions: Sessions = createSessions(app, config, services.store.sessions)

  const badKeys = createBadKeyThrottle(services.redis, config.redisPrefix, config.limits.badKeysPerMinute, services.log)
  app.decorateRequest('principal', undefined as unknown as Principal)
  app.decorateRequest('session', null)
  // Authentication runs at preValidation: after body limits, before the body is checked
  // against its schema, so that callers without the right key learn nothing about it.
  app.addHook('preValidation', async (request, reply) => {
    const key = presentedKey(request)
    request.session = null
    // A key always wins: REST clients and bots are unaffected by any cookie a browser holds.
    if (key === undefined) {
      const session = await sessions.read(request)
      const user = session ? await services.accounts.byId(session.userId) : undefined
      if (session && user) {
        // Cross-site WebSocket hijacking: browsers send cookies on upgrades from any page.
        if (isUpgrade(request) && request.headers.origin !== sessions.publicUrl().origin) throw new BrokerError('cross_origin')
        request.session = session
        request.principal = { userId: user.id, username: user.username, roles: user.roles, scopes: new Set(SCOPES), keyId: null, anonymous: false, suspended: user.suspendedAt !== null }
      }
    }
    if (!request.principal && key !== undefined) {
      // Before the lookup: an address that keeps presenting wrong keys is not answered 401 forever.
      try {
        await badKeys.check(request.ip)
      } catch (error) {
        const retry = (error as { details?: { retry_after_seconds?: number } }).details?.retry_after_seconds
        if (retry) reply.header('retry-after', String(retry))
        throw error
      }
      try {
        request.principal = await services.accounts.authenticate(key)
      } catch (error) {
        if ((error as { code?: string }).code === 'unauthorized') await badKeys.failed(request.ip)
        throw error
      }
    }
    request.principal ??= await services.accounts.authenticate(key)
    const auth = request.routeOptions.config?.auth
    if (auth) requireUser(request, auth === true ? undefined : auth)
  })
  // Anything that changes state with the session cookie must prove it came from our pages.
  app.addHook('preHandler', async (request) => {
    if (request.session && !isSafeMethod(request.method)) sessions.checkCsrf(request)
  })
  const csp = contentSecurityPolicy(Object.values(config.web.oauth).map((p) => new URL(p.authorizeUrl).origin))
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff')
    const type = reply.getHeader('content-type')
    if (typeof type === 'string' && type.startsWith('text/html')) {
      reply.header('content-security-policy', csp)
      reply.header('x-frame-options', 'DENY')
      reply.header('referrer-policy', 'same-origin')
      // Pages show balances, CSRF tokens and, once, a new API key: never cache them.
      reply.header('cache-control', 'no-store')
    }
    return payload
  })
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode })
  })

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number; validation?: unknown }, request, reply) => {
    const answer = toBrokerError(error)
    if (answer.status >= 500) request.log.error({ err: error }, 'request failed')
    return reply.status(answer.status).send({ error: answer.toJSON() })
  })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]
    // A person who mistyped a page address gets a page; API clients get JSON.
    if (!path.startsWith('/v1/') && (request.headers.accept ?? '').includes('text/html')) {
      const viewer = request.session ? { username: request.principal.username, csrf: sessions.csrfToken(request.session) } : { username: null, csrf: null }
      return reply.status(404).type('text/html; charset=utf-8').send(errorPage(viewer, 404, `There is no page at ${path}.`))
    }
    return reply.status(404).send({ error: { code: 'not_found', message: `No route ${request.method} ${path}` } })
  })

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
  registerStatusRoutes(app, services)
  registerHistoryRoutes(app, services)
  await registerWebRoutes(app, services, sessions)
  if (hooks.extend) await hooks.extend(app)
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  return app
}
