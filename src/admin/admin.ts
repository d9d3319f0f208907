/**
 * Operator actions: the one implementation behind the admin REST routes and `horde-admin`
 * on the database, so both doors apply the same rules and write the same audit trail.
 *
 * | action                   | who may                                   |
 * |--------------------------|-------------------------------------------|
 * | grant / revoke moderator | admins (the operator on the database)     |
 * | suspend / unsuspend      | moderators; a moderator's suspension: admins; an admin's: nobody (ADMIN_USERS decides) |
 * | end a user's sessions    | moderators; a moderator's or an admin's: admins |
 * | trust / pause a worker   | moderators                                |
 * | award kudos with a memo  | moderators                                |
 *
 * Every change needs a reason and is written with its trail row (src/store/moderation-ports.ts).
 * Admins themselves are named by `ADMIN_USERS` at start-up (`applyAdminUsers`).
 */
import { ANONYMOUS_ID } from '../economy/anonymous.js'
import { parseKudos } from '../economy/amounts.js'
import { BrokerError } from '../errors.js'
import { awardEntry } from '../ledger/ledger.js'
import type { AccountRecord, Actor, ActionFilter, ActionInput, AdminActionRecord, ModeratedWorker, Store, UserRecord } from '../store/ports.js'

/** Who is acting, and the roles they act with (the operator on the database acts as an admin). */
export interface ActingAs {
  actor: Actor
  roles: readonly string[]
}

/** The roles the admin routes and CLI may grant or revoke. */
export const GRANTABLE_ROLES = ['moderator'] as const
export const MODERATOR_ROLES = ['moderator', 'admin']
export const MAX_REASON_CHARS = 500

/** The outcome of a change: what holds now, and the trail row (null when nothing changed). */
export interface Change<T> {
  value: T
  action: AdminActionRecord | null
}

export interface UserReport {
  user: UserRecord
  account: AccountRecord | undefined
  workers: ModeratedWorker[]
  actions: AdminActionRecord[]
}

export interface Admin {
  /** A user by name, numeric id, or `#id`; throws `unknown_user`. */
  user(ref: string | number): Promise<UserRecord>
  /** A worker by name; throws `unknown_worker`. */
  worker(name: string): Promise<ModeratedWorker>
  showUser(ref: string | number): Promise<UserReport>
  setRole(as: ActingAs, ref: string | number, role: string, grant: boolean, reason: string): Promise<Change<UserRecord>>
  setSuspended(as: ActingAs, ref: string | number, suspended: boolean, reason: string): Promise<Change<UserRecord>>
  /** Logs the user out everywhere: every browser session ends (API keys are untouched). */
  endSessions(as: ActingAs, ref: string | number, reason: string): Promise<{ user: UserRecord; ended: number; action: AdminActionRecord }>
  setTrusted(as: ActingAs, worker: string, trusted: boolean, reason: string): Promise<Change<ModeratedWorker>>
  setPaused(as: ActingAs, worker: string, paused: boolean, reason: string): Promise<Change<ModeratedWorker>>
  /** Mints kudos for a user: one award entry and its trail row, in one write. */
  award(as: ActingAs, ref: string | number, amount: unknown, memo: string): Promise<{ entryId: number; user: UserRecord; amount: number; action: AdminActionRecord }>
  workers(filter?: { owner?: string | number; limit?: number; offset?: number }): Promise<ModeratedWorker[]>
  actions(filter?: Omit<ActionFilter, 'targetUserId' | 'targetWorkerId'> & { user?: string | number; worker?: string }): Promise<AdminActionRecord[]>
  /**
   * Makes the users named by `ADMIN_USERS` admins (a name with no account yet gets one, without a
   * key) and takes the role from anyone else who holds it. Returns what it did, one line each.
   */
  applyAdminUsers(names: readonly string[]): Promise<string[]>
}

function checkReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.trim() === '' || reason.length > MAX_REASON_CHARS) {
    throw new BrokerError('validation_failed', `A reason of 1-${MAX_REASON_CHARS} characters is required`)
  }
  return reason.trim()
}

function needRole(as: ActingAs, roles: readonly string[]): void {
  if (!as.roles.some((role) => roles.includes(role))) throw new BrokerError('role_required', `Needs one of the roles: ${roles.join(', ')}`, { roles })
}

export function createAdmin(store: Pick<Store, 'accounts' | 'ledger' | 'moderation'>, options: { maxKudos: number; now?: () => number }): Admin {
  const { accounts, moderation } = store
  const now = options.now ?? Date.now

  async function user(ref: string | number): Promise<UserRecord> {
    let found: UserRecord | undefined
    if (typeof ref === 'number' || /^#?\d{1,15}$/.test(ref)) found = await accounts.byId(Number(String(ref).replace('#', '')))
    else if (typeof ref === 'string' && ref.length > 0 && ref.length <= 64) found = await accounts.byName(ref)
    if (!found) throw new BrokerError('unknown_user', `No user ${JSON.stringify(ref)}`)
    return found
  }

  async function worker(name: string): Promise<ModeratedWorker> {
    const found = typeof name === 'string' && name.length <= 100 ? await moderation.workerByName(name) : undefined
    if (!found) throw new BrokerError('unknown_worker', `No worker ${JSON.stringify(name)}`)
    return found
  }

  const input = (as: ActingAs, reason: string, details?: Record<string, unknown>) => ({ actor: as.actor, reason, at: now(), details })

  /** A moderator's change to one worker (trust or pause), with its reason in the trail; the worker as it stands after. */
  async function moderateWorker(as: ActingAs, name: string, reason: unknown, change: (workerId: number, why: ActionInput) => Promise<AdminActionRecord | null>) {
    needRole(as, MODERATOR_ROLES)
    const why = checkReason(reason)
    const target = await worker(name)
    const action = await change(target.id, input(as, why, { owner: target.owner }))
    return { value: await worker(name), action }
  }

  return {
    user,
    worker,
    async showUser(ref) {
      const found = await user(ref)
      const [account, workers, actions] = await Promise.all([
        store.ledger.account(found.id), moderation.workers({ ownerId: found.id }), moderation.actions({ targetUserId: found.id, limit: 20 }),
      ])
      return { user: found, account, workers, actions }
    },

    async setRole(as, ref, role, grant, reason) {
      needRole(as, ['admin'])
      if (!(GRANTABLE_ROLES as readonly string[]).includes(role)) throw new BrokerError('bad_role')
      const why = checkReason(reason)
      const target = await user(ref)
      if (target.id === ANONYMOUS_ID) throw new BrokerError('forbidden', 'The Anonymous account holds no roles')
      const roles = grant ? [...new Set([...target.roles, role])] : target.roles.filter((r) => r !== role)
      const action = await moderation.setRoles(target.id, roles, grant ? 'role_grant' : 'role_revoke', input(as, why, { role }))
      return { value: await user(target.id), action }
    },

    async setSuspended(as, ref, suspended, reason) {
      needRole(as, MODERATOR_ROLES)
      const why = checkReason(reason)
      const target = await user(ref)
      if (target.id === ANONYMOUS_ID) throw new BrokerError('forbidden', 'The Anonymous account cannot be suspended')
      if (target.roles.includes('admin')) throw new BrokerError('forbidden', 'Admins are named by ADMIN_USERS and cannot be suspended')
      if (target.roles.includes('moderator')) needRole(as, ['admin'])
      const action = await moderation.setSuspended(target.id, suspended, input(as, why))
      return { value: await user(target.id), action }
    },

    async endSessions(as, ref, reason) {
      needRole(as, MODERATOR_ROLES)
      const why = checkReason(reason)
      const target = await user(ref)
      if (target.id === ANONYMOUS_ID) throw new BrokerError('forbidden', 'The Anonymous account has no sessions')
      if (target.roles.includes('moderator') || target.roles.includes('admin')) needRole(as, ['admin'])
      const { ended, action } = await moderation.endSessions(target.id, input(as, why))
      return { user: target, ended, action }
    },

    setTrusted: (as, name, trusted, reason) => moderateWorker(as, name, reason, (id, why) => moderation.setTrusted(id, trusted, why)),

    setPaused: (as, name, paused, reason) => moderateWorker(as, name, reason, (id, why) => moderation.setPaused(id, paused, why)),

    async award(as, ref, amount, memo) {
      needRole(as, MODERATOR_ROLES)
      const why = checkReason(memo)
      const milli = parseKudos(amount, options.maxKudos)
      const target = await user(ref)
      if (target.id === ANONYMOUS_ID) throw new BrokerError('anonymous_transfer', 'The Anonymous account cannot be awarded kudos')
      const { entryId, action } = await moderation.award(awardEntry({ userId: target.id, amount: milli, memo: why, actorId: as.actor.id }), input(as, why))
      return { entryId, user: target, amount: milli, action }
    },

    async workers(filter = {}) {
      const ownerId = filter.owner === undefined ? undefined : (await user(filter.owner)).id
      return moderation.workers({ ownerId, limit: filter.limit, offset: filter.offset })
    },

    async actions(filter = {}) {
      const { user: userRef, worker: workerName, ...rest } = filter
      const targetUserId = userRef === undefined ? undefined : (await user(userRef)).id
      const targetWorkerId = workerName === undefined ? undefined : (await worker(workerName)).id
      return moderation.actions({ ...rest, targetUserId, targetWorkerId })
    },

    async applyAdminUsers(names) {
      const done: string[] = []
      if (names.length === 0) return done
      const as: ActingAs = { actor: { id: null, name: 'ADMIN_USERS' }, roles: ['admin'] }
      const why = 'named by ADMIN_USERS at start-up'
      const admins = new Set<number>()
      for (const name of names) {
        let target: UserRecord
        try {
          target = await user(name)
        } catch (error) {
          if (/^\d+$/.test(name)) throw new BrokerError('unknown_user', `ADMIN_USERS names user id ${name}, which does not exist`)
          if (!(error instanceof BrokerError)) throw error
          target = (await accounts.createUser({ username: name, roles: [], createdAt: now() })).user
          done.push(`created user ${target.username} (id ${target.id}) for ADMIN_USERS; give it a key with horde-admin users key ${target.username}`)
        }
        if (target.id === ANONYMOUS_ID) throw new BrokerError('forbidden', 'ADMIN_USERS cannot name the Anonymous account')
        admins.add(target.id)
        if (await moderation.setRoles(target.id, [...target.roles, 'admin'], 'role_grant', input(as, why, { role: 'admin' }))) done.push(`${target.username} is an admin`)
      }
      for (const holder of await moderation.usersWithRole('admin')) {
        if (admins.has(holder.id)) continue
        await moderation.setRoles(holder.id, holder.roles.filter((r) => r !== 'admin'), 'role_revoke', input(as, 'not named by ADMIN_USERS at start-up', { role: 'admin' }))
        done.push(`${holder.username} is no longer an admin (not in ADMIN_USERS)`)
      }
      return done
    },
  }
}
