/** Kudos transfers (idempotent) and awards over REST. */
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Services } from '../../services.js'
import { requireRole, requireUser } from '../guards.js'
import { Amount, errorResponses } from '../schemas.js'
import { toKudos } from '../../economy/amounts.js'
import { transferView } from '../../protocol/views.js'

export { transferView }

const Recipient = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer({ minimum: 0 })], { description: 'Username or numeric user id' })
const TransferBody = Type.Object({ to: Recipient, amount: Amount, memo: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false })
const AwardBody = Type.Object({ to: Recipient, amount: Amount, memo: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false })

export function registerKudosRoutes(app: FastifyInstance, services: Services): void {
  const { transfers } = services

  app.post<{ Body: Static<typeof TransferBody> }>('/v1/kudos/transfers', {
    config: { auth: 'transfer' },
    schema: {
      summary: 'Send kudos to another user. Retrying with the same Idempotency-Key and body moves nothing.',
      tags: ['kudos'],
      body: TransferBody,
      headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }),
      response: { ...errorResponses, 402: errorResponses[400] },
    },
  }, async (request, reply) => {
    const principal = requireUser(request, 'transfer')
    const key = request.headers['idempotency-key']
    const result = await transfers.transfer({
      senderId: principal.userId,
      to: request.body.to,
      amount: request.body.amount,
      memo: request.body.memo,
      idempotencyKey: typeof key === 'string' ? key : undefined,
    })
    request.log.info({ transfer: result.id, from: result.from.id, to: result.to.id, amount: result.amount, replayed: result.replayed }, 'transfer')
    return reply.status(result.replayed ? 200 : 201).send(transferView(result))
  })

  app.post<{ Body: Static<typeof AwardBody> }>('/v1/kudos/awards', {
    // Minting moves kudos: a moderator's narrow key (read, generate, work) cannot do it.
    config: { auth: 'transfer' },
    schema: { summary: 'Mint kudos for a user (moderators and admins); logged with the actor', tags: ['kudos'], body: AwardBody },
  }, async (request, reply) => {
    const principal = requireRole(request, ['moderator', 'admin'])
    requireUser(request, 'transfer')
    // The same award as POST /v1/admin/users/:user/awards: kept in the audit trail with its actor.
    const result = await services.admin.award({ actor: { id: principal.userId, name: principal.username }, roles: principal.roles }, request.body.to, request.body.amount, request.body.memo)
    request.log.warn({ award: result.entryId, actor: principal.userId, to: result.user.id, amount: result.amount }, 'kudos awarded')
    return reply.status(201).send({ entry_id: result.entryId, to: { id: result.user.id, username: result.user.username }, amount: toKudos(result.amount), memo: request.body.memo })
  })
}
