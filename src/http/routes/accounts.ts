/** Registration, the caller's own account and keys, and public user lookups. */
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { BrokerError } from '../../errors.js'
import type { Services } from '../../services.js'
import { requireUser } from '../guards.js'
import { Paging, PublicUser, Totals, errorResponses } from '../schemas.js'
import { entryView, publicUserView, totalsView } from '../../protocol/views.js'

const Register = Type.Object({ username: Type.String({ minLength: 2, maxLength: 32 }) }, { additionalProperties: false })
const NewKey = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64 }),
  scopes: Type.Array(Type.String({ maxLength: 20 }), { minItems: 1, maxItems: 5 }),
}, { additionalProperties: false })
const UserList = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
}, { additionalProperties: false })

export function registerAccountRoutes(app: FastifyInstance, services: Services): void {
  const { accounts, ledger, store } = services

  app.post<{ Body: Static<typeof Register> }>('/v1/users', {
    // Per address, counted in Redis: accounts are free, but not by the thousand.
    config: { rateLimit: { max: services.config.limits.registrationsPerMinute, timeWindow: 60_000, keyGenerator: (request) => `register:${request.ip}` } },
    schema: {
      summary: 'Register a user; the answer holds the API key, shown only this once', tags: ['accounts'], body: Register,
      response: { 201: Type.Object({ id: Type.Integer(), username: Type.String(), apikey: Type.String(), created_at: Type.String() }), ...errorResponses },
    },
  }, async (request, reply) => {
    const { user, key } = await accounts.register(request.body.username)
    return reply.status(201).send({ id: user.id, username: user.username, apikey: key.key, created_at: new Date(user.createdAt).toISOString() })
  })

  app.get('/v1/users/me', {
    schema: {
      summary: 'The caller\'s account: balance and totals by category', tags: ['accounts'],
      response: { 200: Type.Object({ ...PublicUser.properties, anonymous: Type.Boolean(), totals: Totals, scopes: Type.Array(Type.String()) }), ...errorResponses },
    },
  }, async (request) => {
    const principal = request.principal
    // A narrow key (a tip bot's `transfer` key, a worker's `work` key) does not read the account.
    if (!principal.anonymous && !principal.scopes.has('read')) throw new BrokerError('insufficient_scope', 'This API key lacks the read scope')
    const user = await accounts.byId(principal.userId)
    if (!user) throw new BrokerError('unknown_user')
    const account = await ledger.account(user.id)
    return { ...publicUserView(user, account?.balance ?? 0), anonymous: principal.anonymous, totals: totalsView(account), scopes: [...principal.scopes] }
  })

  app.get<{ Querystring: Static<typeof Paging> }>('/v1/users/me/ledger', {
    config: { auth: 'read' },
    schema: { summary: 'The caller\'s ledger postings, newest first; page with `before`', tags: ['accounts'], querystring: Paging },
  }, async (request) => {
    const principal = requireUser(request, 'read')
    const entries = await ledger.entries(principal.userId, { before: request.query.before, limit: request.query.limit })
    const last = entries.at(-1)
    return { entries: entries.map(entryView), next_before: entries.length === (request.query.limit ?? 50) && last ? last.postingId : null }
  })

  app.get('/v1/users/me/keys', { config: { auth: 'read' }, schema: { summary: 'The caller\'s API keys (never the secrets)', tags: ['accounts'] } }, async (request) => {
    const principal = requireUser(request, 'read')
    return { keys: (await accounts.listKeys(principal.userId)).map((k) => ({ id: k.id, name: k.name, prefix: k.prefix, scopes: k.scopes, created_at: new Date(k.createdAt).toISOString(), revoked_at: k.revokedAt ? new Date(k.revokedAt).toISOString() : null })) }
  })

  app.post<{ Body: Static<typeof NewKey> }>('/v1/users/me/keys', {
    config: { auth: true },
    schema: { summary: 'Create an API key with a name and scopes; shown only in this answer', tags: ['accounts'], body: NewKey },
  }, async (request, reply) => {
    const principal = requireUser(request)
    // A key cannot mint a key stronger than itself.
    if (principal.scopes.size < 4) throw new BrokerError('insufficient_scope', 'Only a key with every scope can create keys')
    const key = await accounts.issueKey(principal.userId, request.body.name, request.body.scopes)
    return reply.status(201).send({ id: key.id, name: key.name, scopes: key.scopes, apikey: key.key, created_at: new Date(key.createdAt).toISOString() })
  })

  app.delete<{ Params: { id: number } }>('/v1/users/me/keys/:id', {
    config: { auth: true },
    schema: { summary: 'Revoke an API key', tags: ['accounts'], params: Type.Object({ id: Type.Integer({ minimum: 1 }) }) },
  }, async (request, reply) => {
    const principal = requireUser(request)
    if (principal.scopes.size < 4) throw new BrokerError('insufficient_scope', 'Only a key with every scope can revoke keys')
    if (!(await accounts.revokeKey(principal.userId, request.params.id))) throw new BrokerError('not_found', 'No such active key')
    return reply.status(204).send()
  })

  app.delete('/v1/users/me/sessions', {
    config: { auth: true },
    schema: { summary: 'Log out everywhere: end every browser session of the caller (copied cookies too)', tags: ['accounts'] },
  }, async (request) => {
    const principal = requireUser(request)
    if (principal.scopes.size < 4) throw new BrokerError('insufficient_scope', 'Only a key with every scope (or a session) can end sessions')
    return { ended: await store.sessions.endAll(principal.userId) }
  })

  app.get<{ Querystring: Static<typeof UserList> }>('/v1/users', {
    schema: { summary: 'Users sorted by kudos, highest first', tags: ['accounts'], querystring: UserList },
  }, async (request) => {
    const limit = request.query.limit ?? 50
    const offset = request.query.offset ?? 0
    const [rows, total] = await Promise.all([store.accounts.byBalance(limit, offset), store.accounts.countUsers()])
    return { users: rows.map((row) => publicUserView(row, row.balance)), total }
  })

  app.get<{ Params: { user: string } }>('/v1/users/:user', {
    schema: {
      summary: 'A user by numeric id or username (public fields only)', tags: ['accounts'],
      params: Type.Object({ user: Type.String({ minLength: 1, maxLength: 64 }) }),
      response: { 200: PublicUser, ...errorResponses },
    },
  }, async (request) => {
    const key = request.params.user
    const user = /^\d{1,15}$/.test(key) ? await accounts.byId(Number(key)) : await accounts.byName(key)
    if (!user) throw new BrokerError('unknown_user')
    return publicUserView(user, (await ledger.account(user.id))?.balance ?? 0)
  })
}
