/**
 * Accounts over the v2 API: `GET /find_user` (the caller, by key), `GET /users` (25 a page,
 * by kudos), `GET /users/{id}` (the numeric part of `alias#id`), `POST /kudos/transfer`
 * (to `alias#id`; the `Idempotency-Key` header is shared with the native transfers, since
 * both doors call the one transfer operation). Users appear as AI Horde shows them.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { UserRecord } from '../store/ports.js'
import type { Principal } from '../accounts/accounts.js'
import { toKudos } from '../economy/amounts.js'
import { BrokerError } from '../errors.js'
import { fieldsOf } from './body.js'
import type { HordeApiContext } from './context.js'
import { aliasOf, parseUserRef, workerUuid } from './ids.js'

/** AI Horde's page size for `GET /users`. */
const PAGE = 25

/** Whether the caller's key may see the account's own (privileged) details: a registered key with `read`. */
function mayReadOwn(principal: Principal): boolean {
  return !principal.anonymous && principal.scopes.has('read')
}

export function registerAccountRoutes(scope: FastifyInstance, ctx: HordeApiContext): void {
  const { services, config } = ctx
  const { ledger, store, transfers, accounts } = services

  /** A user as AI Horde's user details show one; `own` adds what only the user may see. */
  async function details(user: UserRecord, own: boolean) {
    const [account, workers] = await Promise.all([ledger.account(user.id), store.workers.byOwner(user.id)])
    const milli = (n: number | undefined) => toKudos(Math.abs(n ?? 0))
    const roles = new Set(user.roles)
    const view: Record<string, unknown> = {
      username: aliasOf(user),
      id: user.id,
      kudos: toKudos(account?.balance ?? 0),
      kudos_details: {
        accumulated: toKudos((account?.earnedGeneration ?? 0) - Math.abs(account?.spent ?? 0)),
        gifted: -milli(account?.sent), donated: 0, admin: 0,
        received: milli(account?.received), recurring: milli(account?.earnedUptime), awarded: milli(account?.awarded), styled: 0,
      },
      usage: {}, contributions: {}, records: {},
      concurrency: user.id === 0 ? config.limits.maxActiveAnonymousPerIp : config.limits.maxActivePerUser,
      worker_invited: 0,
      moderator: roles.has('moderator') || roles.has('admin'),
      trusted: roles.has('trusted'),
      flagged: false, pseudonymous: false, service: false, deleted: false, education: false, customizer: false,
      worker_count: workers.length,
      account_age: Math.max(0, Math.round((Date.now() - user.createdAt) / 1000)),
      styles: [],
    }
    if (own) view.worker_ids = workers.map((w) => workerUuid(w.id))
    return view
  }

  scope.get('/find_user', async (request) => {
    if (typeof request.headers.apikey !== 'string' || request.headers.apikey === '') throw new BrokerError('unauthorized', 'No user matching sent API Key.')
    const user = await accounts.byId(request.principal.userId)
    if (!user) throw new BrokerError('unknown_user', `User with api_key not found.`)
    // As AI Horde answers a restricted (shared) key: the public details only. A bridge's `work`
    // key, a bot's `transfer` key still learn who they are (username, id, kudos), not the rest.
    return details(user, mayReadOwn(request.principal))
  })

  scope.get<{ Querystring: { page?: string; sort?: string } }>('/users', async (request) => {
    const page = Math.max(1, Math.min(10_000, Number.parseInt(request.query.page ?? '1', 10) || 1))
    // `sort=age` is accepted and answered by kudos too (see docs/horde-api.md).
    const rows = await store.accounts.byBalance(PAGE, (page - 1) * PAGE)
    return Promise.all(rows.map((row) => details(row, false)))
  })

  scope.get<{ Params: { id: string } }>('/users/:id', async (request) => {
    const { id } = request.params
    if (!/^\d{1,15}$/.test(id)) throw new BrokerError('unknown_user', "Please use only the numerical part of the userID. E.g. the '1' in 'db0#1'")
    const user = await accounts.byId(Number(id))
    if (!user) throw new BrokerError('unknown_user', `User with ID '${id}' not found.`)
    return details(user, mayReadOwn(request.principal) && request.principal.userId === user.id)
  })

  scope.post('/kudos/transfer', async (request) => {
    const { principal } = request
    if (principal.anonymous) throw new BrokerError('anonymous_transfer', 'You cannot transfer Kudos from Anonymous.', { rc: 'KudosTransferFromAnon' })
    if (!principal.scopes.has('transfer')) throw new BrokerError('insufficient_scope', 'This API key lacks the transfer scope')
    const fields = fieldsOf(request.body)
    const ref = typeof fields.username === 'string' ? parseUserRef(fields.username) : undefined
    if (!ref) throw new BrokerError('unknown_user', 'Invalid target username.', { rc: 'InvalidTargetUsername', status: 400 })
    const amount = fields.amount ?? 100
    const header = request.headers['idempotency-key']
    try {
      const result = await transfers.transfer({
        senderId: principal.userId,
        to: 'id' in ref ? ref.id : ref.username,
        amount: typeof amount === 'number' ? String(amount) : amount,
        // Without a key a retry moves kudos again, as on AI Horde; with one, never twice (either door).
        idempotencyKey: typeof header === 'string' && header !== '' ? header : `horde-api:${randomUUID()}`,
      })
      request.log.info({ transfer: result.id, from: result.from.id, to: result.to.id, amount: result.amount, replayed: result.replayed }, 'v2 transfer')
      return { transferred: toKudos(result.amount) }
    } catch (error) {
      if (error instanceof BrokerError && error.code === 'unknown_user') throw new BrokerError('unknown_user', 'Invalid target username.', { rc: 'InvalidTargetUsername', status: 400 })
      if (error instanceof BrokerError && error.code === 'anonymous_transfer') throw new BrokerError('anonymous_transfer', 'Tried to send kudos to Anonymous.', { rc: 'KudosTransferToAnon', status: 400 })
      throw error
    }
  })
}
