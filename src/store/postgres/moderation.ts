/**
 * Moderation on PostgreSQL: each change and its audit-trail row in one write through the
 * group committer, the target row locked (`for update`) so two processes changing one flag
 * record one change, not two. A change that changes nothing writes nothing and returns null.
 */
import type pg from 'pg'
import type { ActionInput, AdminActionKind, AdminActionRecord, ModeratedWorker, ModerationStore } from '../ports.js'
import type { PgCommitter } from './commit.js'

const ACTION_COLUMNS = `id, actor_id as "actorId", actor, action, target_user_id as "targetUserId", target_worker_id as "targetWorkerId",
  target, reason, details, created_at as "createdAt"`
const WORKER_COLUMNS = `w.id as id, w.name as name, w.owner_id as "ownerId", u.username as owner, w.trusted = 1 as trusted,
  w.paused_at as "pausedAt", w.paused_reason as "pausedReason", w.last_seen_at as "lastSeenAt", w.jobs as jobs, w.tokens as tokens,
  w.earned as earned from workers w join users u on u.id = w.owner_id`

type ActionRow = Omit<AdminActionRecord, 'details'> & { details: string }
const toAction = (row: ActionRow): AdminActionRecord => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> })

/** The `ModerationStore` on PostgreSQL. */
export function createPgModerationStore(pool: pg.Pool, commit: PgCommitter): ModerationStore {
  const all = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) => (await pool.query<T>(text, values)).rows

  async function record(db: pg.ClientBase, action: AdminActionKind, target: { userId?: number; workerId?: number; name: string }, input: ActionInput): Promise<AdminActionRecord> {
    const row = (await db.query<ActionRow>(`insert into admin_actions (actor_id, actor, action, target_user_id, target_worker_id, target, reason, details, created_at)
      values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning ${ACTION_COLUMNS}`,
    [input.actor.id, input.actor.name, action, target.userId ?? null, target.workerId ?? null, target.name, input.reason, JSON.stringify(input.details ?? {}), input.at])).rows[0]
    return toAction(row)
  }

  async function lockedUser(db: pg.ClientBase, userId: number) {
    const row = (await db.query<{ username: string; roles: string; suspendedAt: number | null }>(
      'select username, roles, suspended_at as "suspendedAt" from users where id = $1 for update', [userId])).rows[0]
    if (!row) throw new Error(`no user ${userId}`)
    return row
  }

  async function lockedWorker(db: pg.ClientBase, workerId: number) {
    const row = (await db.query<{ name: string; ownerId: number; trusted: number; pausedAt: number | null }>(
      'select name, owner_id as "ownerId", trusted, paused_at as "pausedAt" from workers where id = $1 for update', [workerId])).rows[0]
    if (!row) throw new Error(`no worker ${workerId}`)
    return row
  }

  return {
    setRoles(userId, roles, action, input) {
      return commit.run(async ({ db }) => {
        const row = await lockedUser(db, userId)
        const next = JSON.stringify([...new Set(roles)].sort())
        if (JSON.stringify([...new Set(JSON.parse(row.roles) as string[])].sort()) === next) return null
        await db.query('update users set roles = $1 where id = $2', [next, userId])
        return record(db, action, { userId, name: row.username }, input)
      })
    },
    setSuspended(userId, on, input) {
      return commit.run(async ({ db }) => {
        const row = await lockedUser(db, userId)
        if ((row.suspendedAt !== null) === on) return null
        await db.query('update users set suspended_at = $1 where id = $2', [on ? input.at : null, userId])
        if (on) await db.query('delete from sessions where user_id = $1', [userId])
        return record(db, on ? 'user_suspend' : 'user_unsuspend', { userId, name: row.username }, input)
      })
    },
    endSessions(userId, input) {
      return commit.run(async ({ db }) => {
        const row = await lockedUser(db, userId)
        const ended = (await db.query('delete from sessions where user_id = $1', [userId])).rowCount ?? 0
        return { ended, action: await record(db, 'sessions_end', { userId, name: row.username }, { ...input, details: { ...input.details, ended } }) }
      })
    },
    setTrusted(workerId, on, input) {
      return commit.run(async ({ db }) => {
        const row = await lockedWorker(db, workerId)
        if ((row.trusted === 1) === on) return null
        await db.query('update workers set trusted = $1 where id = $2', [on ? 1 : 0, workerId])
        return record(db, on ? 'worker_trust' : 'worker_untrust', { userId: row.ownerId, workerId, name: row.name }, input)
      })
    },
    setPaused(workerId, on, input) {
      return commit.run(async ({ db }) => {
        const row = await lockedWorker(db, workerId)
        if ((row.pausedAt !== null) === on) return null
        await db.query('update workers set paused_at = $1, paused_reason = $2 where id = $3', [on ? input.at : null, on ? input.reason : null, workerId])
        return record(db, on ? 'worker_pause' : 'worker_unpause', { userId: row.ownerId, workerId, name: row.name }, input)
      })
    },
    award(entry, input) {
      return commit.run(async (scope) => {
        const userId = entry.postings[0].userId
        const row = (await scope.db.query<{ username: string }>('select username from users where id = $1', [userId])).rows[0]
        if (!row) throw new Error(`no user ${userId}`)
        const entryId = await scope.post(entry)
        const action = await record(scope.db, 'award', { userId, name: row.username }, { ...input, details: { ...input.details, amount: entry.postings[0].amount, entry: entryId } })
        return { entryId, action }
      })
    },
    async actions(filter = {}) {
      const where: string[] = []
      const values: number[] = []
      const add = (clause: string, value: number) => { values.push(value); where.push(clause.replace('?', `$${values.length}`)) }
      if (filter.after !== undefined) add('id > ?', filter.after)
      if (filter.before !== undefined) add('id < ?', filter.before)
      if (filter.targetUserId !== undefined) add('target_user_id = ?', filter.targetUserId)
      if (filter.targetWorkerId !== undefined) add('target_worker_id = ?', filter.targetWorkerId)
      const limit = Math.min(Math.max(filter.limit ?? 50, 1), 500)
      return (await all<ActionRow>(`select ${ACTION_COLUMNS} from admin_actions ${where.length ? `where ${where.join(' and ')}` : ''}
        order by id ${filter.after !== undefined ? 'asc' : 'desc'} limit ${limit}`, values)).map(toAction)
    },
    async lastActionId() {
      return (await all<{ id: number | null }>('select max(id) as id from admin_actions'))[0]?.id ?? 0
    },
    async suspendedUsers() {
      return (await all<{ id: number }>('select id from users where suspended_at is not null order by id')).map((row) => row.id)
    },
    async usersWithRole(role) {
      // Roles are a short JSON list: a text match finds candidates, the parsed list decides.
      const rows = await all<{ id: number; username: string; roles: string }>(
        'select id, username, roles from users where strpos(roles, $1) > 0 order by id', [JSON.stringify(role)])
      return rows.map((row) => ({ ...row, roles: JSON.parse(row.roles) as string[] })).filter((row) => row.roles.includes(role))
    },
    async workers(filter = {}) {
      const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000)
      const offset = Math.max(filter.offset ?? 0, 0)
      return filter.ownerId === undefined
        ? all<ModeratedWorker>(`select ${WORKER_COLUMNS} order by w.name limit $1 offset $2`, [limit, offset])
        : all<ModeratedWorker>(`select ${WORKER_COLUMNS} where w.owner_id = $1 order by w.name limit $2 offset $3`, [filter.ownerId, limit, offset])
    },
    async workerByName(name) {
      return (await all<ModeratedWorker>(`select ${WORKER_COLUMNS} where w.name = $1`, [name]))[0]
    },
  }
}
