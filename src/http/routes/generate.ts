/** Generation over REST: submit, status and result, cancel; and the horde's status. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { Capability, GenerateBody, IdempotencyKey } from '../../protocol/client.js'
import type { Core } from '../../core/core.js'
import type { Caller } from '../../core/generations.js'
import type { Services } from '../../services.js'
import { BrokerError } from '../../errors.js'
import { errorResponses } from '../schemas.js'

const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) })
/** The secret an anonymous submission was answered with: reading and cancelling that request need it. */
const CapabilityHeaders = Type.Object({ 'x-request-capability': Type.Optional(Capability) })

/** The caller, with the request capability it sent (an anonymous request's key). */
export function callerOf(request: FastifyRequest): Caller {
  const capability = request.headers['x-request-capability']
  return { principal: request.principal, address: request.ip, ...(typeof capability === 'string' ? { capability } : {}) }
}

/** Reading and cancelling requests need the same scope as submitting them (and as the client socket). */
function requireGenerate(request: FastifyRequest): void {
  if (!request.principal.scopes.has('generate')) throw new BrokerError('insufficient_scope', 'This API key lacks the generate scope')
}

export function registerGenerateRoutes(app: FastifyInstance, services: Services, core: Core): void {
  const { generations } = core
  const perSecond = services.config.limits.submitsPerSecond
  app.post<{ Body: GenerateBody }>('/v1/generate', {
    config: {
      // Per user, or per address for anonymous use; counted in Redis, so shared by every process.
      rateLimit: {
        max: Math.max(1, Math.round(perSecond)),
        timeWindow: perSecond >= 1 ? 1000 : Math.round(1000 / perSecond),
        keyGenerator: (request) => (request.principal && !request.principal.anonymous ? `user:${request.principal.userId}` : `ip:${request.ip}`),
      },
    },
    schema: {
      summary: 'Submit a prompt. The answer comes at once with the request id; follow it with GET or the client socket.',
      tags: ['generate'], body: GenerateBody, response: errorResponses,
      headers: Type.Object({ 'idempotency-key': Type.Optional(IdempotencyKey) }),
    },
  }, async (request, reply) => {
    const key = request.headers['idempotency-key']
    const caller = callerOf(request)
    const accepted = await generations.submit(caller, request.body, { idempotencyKey: typeof key === 'string' ? key : undefined })
    const capability = accepted.capability === undefined ? {} : { capability: accepted.capability }
    if (accepted.replayed) return reply.status(200).send({ ...(await generations.view({ ...caller, ...capability }, accepted.id)), replayed: true, ...capability })
    return reply.status(202).send({ id: accepted.id, state: 'waiting', position: accepted.position, is_possible: accepted.isPossible, eta_seconds: accepted.eta, ...capability })
  })

  app.get('/v1/status', {
    schema: { summary: 'Workers online, waiting requests per model, throughput over the last minute, top kudos holders', tags: ['status'] },
  }, async () => core.status())

  app.get<{ Params: { id: string } }>('/v1/generate/:id', {
    schema: { summary: 'Status of a request; the text once it is done (an anonymous request: with its X-Request-Capability)', tags: ['generate'], params: IdParam, headers: CapabilityHeaders },
  }, async (request) => {
    requireGenerate(request)
    return generations.view(callerOf(request), request.params.id)
  })

  app.delete<{ Params: { id: string } }>('/v1/generate/:id', {
    schema: { summary: 'Cancel a request: waiting ones end at once, running ones are stopped on the worker and pay for what was delivered (an anonymous request: with its X-Request-Capability)', tags: ['generate'], params: IdParam, headers: CapabilityHeaders },
  }, async (request) => {
    requireGenerate(request)
    return generations.cancel(callerOf(request), request.params.id)
  })
}
