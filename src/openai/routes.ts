/**
 * The OpenAI-compatible routes: `POST /v1/chat/completions`, `POST /v1/completions`,
 * `GET /v1/models` and `GET /v1/models/:id`, so that programs written for OpenAI's API
 * (its SDKs, LangChain, editor plugins, chat front-ends) can use the horde by changing the
 * base URL and the key. Each completion is an ordinary horde request submitted through
 * `core.generations`: kudos priority, worker preferences, billing, limits and idempotency
 * all apply. The routes live in their own fastify scope, whose error handler answers in
 * OpenAI's error shape; authentication is the app's (`Authorization: Bearer <horde key>`;
 * no key is the Anonymous account). docs/openai-api.md describes what is served.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Core } from '../core/core.js'
import type { ModelRegistry } from '../economy/models.js'
import { BrokerError } from '../errors.js'
import { IdempotencyKey } from '../protocol/client.js'
import { classOf } from '../queue/classes.js'
import type { Services } from '../services.js'
import { sendError, sendStream, sendWhole, watchClient } from './answer.js'
import { createCatalog, type Catalog, type Resolved } from './catalog.js'
import { toOpenAiError } from './errors.js'
import { chatCall, completionCall, type HordeCall } from './mapping.js'
import { ChatBody, CompletionBody } from './schemas.js'
import { isTemplateName, TEMPLATES } from './templates.js'

const IdempotencyHeader = Type.Object({ 'idempotency-key': Type.Optional(IdempotencyKey) })

/** Fails start-up when the registry names a template this table lacks (a typo would fall back silently). */
function checkTemplates(models: Pick<ModelRegistry, 'templateNames'>): void {
  for (const name of models.templateNames) {
    if (!isTemplateName(name)) throw new Error(`The model registry (MODELS_FILE) names the chat template ${name}, which does not exist; known: ${Object.keys(TEMPLATES).join(', ')}`)
  }
}

export function registerOpenAiRoutes(app: FastifyInstance, services: Services, core: Core, models: ModelRegistry): void {
  checkTemplates(models)
  const { config } = services
  const catalog: Catalog = createCatalog({ registry: models, aliases: config.openai.aliases, onlineWorkers: () => core.dispatcher.onlineWorkers() })
  const deps = { generations: core.generations, positions: core.positions }
  const perSecond = config.limits.submitsPerSecond
  // The same per-user (per-address for anonymous use) limit as POST /v1/generate, counted in Redis.
  const rateLimit = {
    max: Math.max(1, Math.round(perSecond)),
    timeWindow: perSecond >= 1 ? 1000 : Math.round(1000 / perSecond),
    keyGenerator: (request: FastifyRequest) => (request.principal && !request.principal.anonymous ? `user:${request.principal.userId}` : `ip:${request.ip}`),
  }
  let closing = false

  /** Submits the mapped request, then answers it as a stream or as one object. */
  async function complete(request: FastifyRequest, reply: FastifyReply, kind: 'chat' | 'text', model: string, map: (resolved: Resolved) => HordeCall): Promise<FastifyReply> {
    const { principal } = request
    // Watched before anything is awaited: a client may leave while its request is submitted.
    const client = watchClient(reply.raw)
    if (!principal.scopes.has('generate')) throw new BrokerError('insufficient_scope', 'This API key lacks the generate scope')
    const call = map(await catalog.resolve(model))
    const { body } = call
    const cls = classOf(body.models ?? [], body.max_length, body.max_context_length)
    const noWorker = () => new BrokerError('no_worker', `No worker online can serve \`${model}\` with max_tokens ${body.max_length} and a context of ${body.max_context_length} tokens (GET /v1/models lists what is served now, with each model's limits).`)
    if (!(await core.dispatcher.isPossible(cls))) throw noWorker()
    const submitter = { principal, address: request.ip }
    const key = request.headers['idempotency-key']
    const accepted = await core.generations.submit(submitter, body, { idempotencyKey: typeof key === 'string' ? key : undefined })
    // Followed and cancelled with its capability (an anonymous request has one).
    const caller = { ...submitter, capability: accepted.capability }
    if (!accepted.isPossible && !accepted.replayed) {
      // The last worker that could serve it left between the check and the submission.
      await core.generations.cancel(caller, accepted.id).catch(() => {})
      throw noWorker()
    }
    reply.header('x-horde-request-id', accepted.id).header('x-request-id', accepted.id)
    if (accepted.capability !== undefined) reply.header('x-horde-request-capability', accepted.capability)
    const ctx = { deps, client, caller, accepted, call, kind, requested: model, closing: () => closing }
    if (call.stream) return sendStream(reply, ctx)
    if (accepted.position !== null) reply.header('x-horde-queue-position', String(accepted.position))
    return sendWhole(reply, ctx)
  }

  void app.register(async (scope) => {
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
      const answer = toOpenAiError(error)
      if (answer.status >= 500) request.log.error({ err: error }, 'OpenAI route failed')
      return sendError(reply, answer)
    })
    // Connections the broker closes while it shuts down are not clients leaving: their
    // requests are kept (a retry with the same Idempotency-Key finds them).
    scope.addHook('preClose', async () => {
      closing = true
    })

    scope.post<{ Body: ChatBody }>('/v1/chat/completions', {
      config: { rateLimit },
      schema: {
        summary: 'OpenAI-compatible chat completion: the messages rendered by the model family\'s template, streamed with stream: true',
        tags: ['openai'], body: ChatBody, headers: IdempotencyHeader,
      },
    }, async (request, reply) => complete(request, reply, 'chat', request.body.model, (resolved) =>
      chatCall(request.body, { resolved, limits: config.limits, defaultMaxTokens: config.openai.defaultMaxTokens })))

    scope.post<{ Body: CompletionBody }>('/v1/completions', {
      config: { rateLimit },
      schema: { summary: 'OpenAI-compatible (legacy) completion of a raw prompt', tags: ['openai'], body: CompletionBody, headers: IdempotencyHeader },
    }, async (request, reply) => complete(request, reply, 'text', request.body.model, (resolved) =>
      completionCall(request.body, { resolved, limits: config.limits, defaultMaxTokens: config.openai.defaultMaxTokens })))

    scope.get('/v1/models', {
      schema: { summary: 'Models workers serve now (and the operator\'s aliases), with worker counts and limits', tags: ['openai'] },
    }, async () => ({ object: 'list', data: await catalog.list() }))

    // A wildcard: horde model names contain slashes, which clients send as they are or as %2F.
    scope.get<{ Params: { '*': string } }>('/v1/models/*', {
      schema: { summary: 'One model or alias served now', tags: ['openai'] },
    }, async (request) => {
      const raw = request.params['*']
      let id: string
      try {
        id = decodeURIComponent(raw)
      } catch {
        id = raw
      }
      const found = await catalog.get(id)
      if (!found) throw new BrokerError('unknown_model', `The model \`${id}\` does not exist or no worker serves it now.`, { param: 'model' })
      return found
    })
  })
}
