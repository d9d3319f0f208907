/**
 * The admin REST routes (`/v1/admin/…`): the operator actions of src/admin/admin.ts over
 * HTTP. Each route checks the caller's role before its body is validated (`role_required`),
 * reads need the key's `read` scope and changes a key with every scope; each change is kept
 * in the audit trail with the caller as its actor.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { SCOPES } from '../../accounts/accounts.js'
import { MAX_REASON_CHARS, MODERATOR_ROLES, type ActingAs } from '../../admin/admin.js'
import { adminActionView, moderatedWorkerView, userReportView } from '../../admin/views.js'
import type { ModelRegistry } from '../../economy/models.js'
import { toKudos } from '../../economy/amounts.js'
import { BrokerError } from '../../errors.js'
import { auditLedger } from '../../ledger/audit.js'
import type { Services } from '../../services.js'
import { requireRole } from '../guards.js'
import { Amount, errorResponses } from '../schemas.js'

const UserParam = Type.Object({ user: Type.String({ minLength: 1, maxLength: 64, description: 'Username, numeric id, or #id' }) })
const WorkerParam = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) })
const Reason = Type.String({ minLength: 1, maxLength: MAX_REASON_CHARS, description: 'Why: kept in the audit trail' })
const RoleBody = Type.Object({ role: Type.String({ minLength: 1, maxLength: 32 }), grant: Type.Boolean(), reason: Reason }, { additionalProperties: false })
const SuspendBody = Type.Object({ suspended: Type.Boolean(), reason: Reason }, { additionalProperties: false })
const ReasonBody = Type.Object({ reason: Reason }, { additionalProperties: false })
const AwardBody = Type.Object({ amount: Amount, memo: Reason }, { additionalProperties: false })
const TrustBody = Type.Object({ trusted: Type.Boolean(), reason: Reason }, { additionalProperties: false })
const PauseBody = Type.Object({ paused: Type.Boolean(), reason: Reason }, { additionalProperties: false })
const WorkersQuery = Type.Object({
  owner: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
}, { additionalProperties: false })
const ActionsQuery = Type.Object({
  user: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  worker: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  before: Type.Optional(Type.Integer({ minimum: 1 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
}, { additionalProperties: false })

type Need = 'moderator' | 'admin'

/** Role first (before the body is looked at), then the key's scope: reads need `read`, changes every scope. */
function guard(need: Need, change: boolean) {
  return async (request: FastifyRequest) => {
    requireRole(request, need === 'admin' ? ['admin'] : MODERATOR_ROLES)
    const scopes = request.principal.scopes
    if (change ? !SCOPES.every((scope) => scopes.has(scope)) : !scopes.has('read')) {
      throw new BrokerError('insufficient_scope', change ? 'Admin changes need a key with every scope (all)' : 'This API key lacks the read scope')
    }
  }
}

const actingAs = (request: FastifyRequest): ActingAs => ({
  actor: { id: request.principal.userId, name: request.principal.username },
  roles: request.principal.roles,
})

export function registerAdminRoutes(app: FastifyInstance, services: Services, models: ModelRegistry): void {
  const { admin } = services
  const tags = ['admin']
  const changed = async () => { await services.moderationChanged?.() }
  const route = (need: Need, change: boolean, summary: string, extra: Record<string, unknown> = {}) => ({
    config: { auth: true as const },
    preValidation: guard(need, change),
    schema: { summary, tags, response: errorResponses, ...extra },
  })

  app.get<{ Params: Static<typeof UserParam> }>('/v1/admin/users/:user', route('moderator', false, 'A user as moderators see it: roles, suspension, balance, workers, recent actions', { params: UserParam }),
    async (request) => userReportView(await admin.showUser(request.params.user)))

  app.post<{ Params: Static<typeof UserParam>; Body: Static<typeof RoleBody> }>('/v1/admin/users/:user/roles',
    route('admin', true, 'Grant or revoke the moderator role (admins)', { params: UserParam, body: RoleBody }), async (request) => {
      const { value, action } = await admin.setRole(actingAs(request), request.params.user, request.body.role, request.body.grant, request.body.reason)
      request.log.warn({ actor: request.principal.userId, target: value.id, role: request.body.role, grant: request.body.grant }, 'role changed')
      return { user: { id: value.id, username: value.username, roles: value.roles }, changed: action !== null, action: action && adminActionView(action) }
    })

  app.post<{ Params: Static<typeof UserParam>; Body: Static<typeof SuspendBody> }>('/v1/admin/users/:user/suspension',
    route('moderator', true, 'Suspend a user (no new requests, no transfers out, workers stopped) or lift it', { params: UserParam, body: SuspendBody }), async (request) => {
      const { value, action } = await admin.setSuspended(actingAs(request), request.params.user, request.body.suspended, request.body.reason)
      await changed()
      request.log.warn({ actor: request.principal.userId, target: value.id, suspended: request.body.suspended }, 'suspension changed')
      return { user: { id: value.id, username: value.username, suspended: value.suspendedAt !== null }, changed: action !== null, action: action && adminActionView(action) }
    })

  app.post<{ Params: Static<typeof UserParam>; Body: Static<typeof ReasonBody> }>('/v1/admin/users/:user/logout',
    route('moderator', true, 'End every browser session of a user (log out everywhere; API keys are untouched)', { params: UserParam, body: ReasonBody }), async (request) => {
      const result = await admin.endSessions(actingAs(request), request.params.user, request.body.reason)
      request.log.warn({ actor: request.principal.userId, target: result.user.id, ended: result.ended }, 'sessions ended')
      return { user: { id: result.user.id, username: result.user.username }, ended: result.ended, action: adminActionView(result.action) }
    })

  app.post<{ Params: Static<typeof UserParam>; Body: Static<typeof AwardBody> }>('/v1/admin/users/:user/awards',
    route('moderator', true, 'Mint kudos for a user, with a memo (an award entry of the ledger)', { params: UserParam, body: AwardBody }), async (request, reply) => {
      const result = await admin.award(actingAs(request), request.params.user, request.body.amount, request.body.memo)
      request.log.warn({ award: result.entryId, actor: request.principal.userId, to: result.user.id, amount: result.amount }, 'kudos awarded')
      return reply.status(201).send({ entry_id: result.entryId, to: { id: result.user.id, username: result.user.username }, amount: toKudos(result.amount), memo: request.body.memo, action: adminActionView(result.action) })
    })

  app.get<{ Querystring: Static<typeof WorkersQuery> }>('/v1/admin/workers', route('moderator', false, 'Workers with their trust, pause and counters', { querystring: WorkersQuery }),
    async (request) => ({ workers: (await admin.workers(request.query)).map(moderatedWorkerView) }))

  app.post<{ Params: Static<typeof WorkerParam>; Body: Static<typeof TrustBody> }>('/v1/admin/workers/:name/trust',
    route('moderator', true, 'Mark a worker trusted (it may serve trusted-only requests) or untrusted', { params: WorkerParam, body: TrustBody }), async (request) => {
      const { value, action } = await admin.setTrusted(actingAs(request), request.params.name, request.body.trusted, request.body.reason)
      await changed()
      return { worker: moderatedWorkerView(value), changed: action !== null, action: action && adminActionView(action) }
    })

  app.post<{ Params: Static<typeof WorkerParam>; Body: Static<typeof PauseBody> }>('/v1/admin/workers/:name/pause',
    route('moderator', true, 'Pause a worker (connected, no jobs, no uptime; it is told why) or unpause it', { params: WorkerParam, body: PauseBody }), async (request) => {
      const { value, action } = await admin.setPaused(actingAs(request), request.params.name, request.body.paused, request.body.reason)
      await changed()
      return { worker: moderatedWorkerView(value), changed: action !== null, action: action && adminActionView(action) }
    })

  app.get<{ Querystring: Static<typeof ActionsQuery> }>('/v1/admin/actions', route('moderator', false, 'The audit trail, newest first', { querystring: ActionsQuery }),
    async (request) => ({ actions: (await admin.actions(request.query)).map(adminActionView) }))

  app.get('/v1/admin/models', route('moderator', false, 'The model registry this broker loaded'),
    async () => ({ models: models.names.map((name) => ({ name, size_b: models.sizeOf(name) ?? null, template: models.templateOf(name) ?? null })) }))

  app.get('/v1/admin/audit', route('admin', false, 'Runs the ledger audit (admins): the same report as npm run audit-ledger'),
    async () => auditLedger(services.store.audit))
}
