/**
 * Moderation on SQLite: each change and its audit-trail row in one write through the group
 * committer, so the trail and the flags it describes can never disagree. A change that
 * changes nothing (a user suspended twice) writes nothing and returns null.
 */
import type Database from 'better-sqlite3'
import type { ActionInput, AdminActionKind, AdminActionRecord, ModeratedWorker, ModerationStore } from '../ports.js'
import type { Committer } from './commit.js'

const ACTION_COLUMNS = `id, actor_id as actorId, actor, action, target_user_id as targetUserId, target_worker_id as targetWorkerId,
  target, reason, details, created_at as createdAt`
const WORKER_COLUMNS = `w.id as id, w.name as name, w.owner_id as ownerId, u.username as owner, w.trusted as trusted,
  w.paused_at as pausedAt, w.paused_reason as pausedReason, w.last_seen_at as lastSeenAt, w.jobs as jobs, w.tokens as tokens,
  w.earned as earned from workers w join users u on u.id = w.owner_id`

type ActionRow = Omit<AdminActionRecord, 'details'> & { details: string }
type WorkerRow = Omit<ModeratedWorker, 'trusted'> & { trusted: number }
const toAction = (row: ActionRow): AdminActionRecord => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> })
const toWorker = (row: WorkerRow): ModeratedWorker => ({ ...row, trusted: row.trusted === 1 })

/** The `ModerationStore` on SQLite. */
export function createSqliteModerationStore(sqlite: Database.Database, commit: Committer): ModerationStore {
  const insertAction = sqlite.prepare<[number | null, string, string, number | null, number | null, string, string, string, number], ActionRow>(`
    insert into admin_actions (actor_id, actor, action, target_user_id, target_worker_id, target, reason, details, created_at)
    values (?, ?, ?, ?, ?, ?, ?, ?, ?) returning ${ACTION_COLUMNS}`)
  const user = sqlite.prepare<[number], { username: string; roles: string; suspendedAt: number | null }>(
    'select username, roles, suspended_at as suspendedAt from users where id = ?')
  const worker = sqlite.prepare<[number], { name: string; ownerId: number; trusted: number; pausedAt: number | null }>(
    'select name, owner_id as ownerId, trusted, paused_at as pausedAt from workers where id = ?')
  const setRoles = sqlite.prepare('update users set roles = ? where id = ?')
  const setSuspended = sqlite.prepare('update users set suspended_at = ? where id = ?')
  const endSessions = sqlite.prepare('delete from sessions where user_id = ?')
  const setTrusted = sqlite.prepare('update workers set trusted = ? where id = ?')
  const setPaused = sqlite.prepare('update workers set paused_at = ?, paused_reason = ? where id = ?')
  const lastId = sqlite.prepare<[], { id: number | null }>('select max(id) as id from admin_actions')
  const suspended = sqlite.prepare<[], { id: number }>('select id from users where suspended_at is not null order by id')
  const workerByName = sqlite.prepare<[string], WorkerRow>(`select ${WORKER_COLUMNS} where w.name = ?`)

  /** Inside the write: the trail row. */
  function record(action: AdminActionKind, target: { userId?: number; workerId?: number; name: string }, input: ActionInput): AdminActionRecord {
    return toAction(insertAction.get(input.actor.id, input.actor.name, action, target.userId ?? null, target.workerId ?? null, target.name,
      input.reason, JSON.stringify(input.details ?? {}), input.at)!)
  }

  function missing(kind: string, id: number): Error {
    return new Error(`no ${kind} ${id}`)
  }

  return {
    setRoles(userId, roles, action, input) {
      return commit.run(() => {
        const row = user.get(userId)
        if (!row) throw missing('user', userId)
        const next = JSON.stringify([...new Set(roles)].sort())
        if (JSON.stringify([...new Set(JSON.parse(row.roles) as string[])].sort()) === next) return null
        setRoles.run(next, userId)
        return record(action, { userId, name: row.username }, input)
      })
    },
    setSuspended(userId, on, input) {
      return commit.run(() => {
        const row = user.get(userId)
        if (!row) throw missing('user', userId)
        if ((row.suspendedAt !== null) === on) return null
        setSuspended.run(on ? input.at : null, userId)
        if (on) endSessions.run(userId)
        return record(on ? 'user_suspend' : 'user_unsuspend', { userId, name: row.username }, input)
      })
    },
    endSessions(userId, input) {
      return commit.run(() => {
        const row = user.get(userId)
        if (!row) throw missing('user', userId)
        const ended = endSessions.run(userId).changes
        return { ended, action: record('sessions_end', { userId, name: row.username }, { ...input, details: { ...input.details, ended } }) }
      })
    },
    setTrusted(workerId, on, input) {
      return commit.run(() => {
        const row = worker.get(workerId)
        if (!row) throw missing('worker', workerId)
        if ((row.trusted === 1) === on) return null
        setTrusted.run(on ? 1 : 0, workerId)
        return record(on ? 'worker_trust' : 'worker_untrust', { userId: row.ownerId, workerId, name: row.name }, input)
      })
    },
    setPaused(workerId, on, input) {
      return commit.run(() => {
        const row = worker.get(workerId)
        if (!row) throw missing('worker', workerId)
        if ((row.pausedAt !== null) === on) return null
        setPaused.run(on ? input.at : null, on ? input.reason : null, workerId)
        return record(on ? 'worker_pause' : 'worker_unpause', { userId: row.ownerId, workerId, name: row.name }, input)
      })
    },
    award(entry, input) {
      return commit.run((scope) => {
        const userId = entry.postings[0].userId
        const row = user.get(userId)
        if (!row) throw missing('user', userId)
        const entryId = scope.post(entry)
        const action = record('award', { userId, name: row.username }, { ...input, details: { ...input.details, amount: entry.postings[0].amount, entry: entryId } })
        return { entryId, action }
      })
    },
    async actions(filter = {}) {
      const where: string[] = []
      const values: number[] = []
      if (filter.after !== undefined) { where.push('id > ?'); values.push(filter.after) }
      if (filter.before !== undefined) { where.push('id < ?'); values.push(filter.before) }
      if (filter.targetUserId !== undefined) { where.push('target_user_id = ?'); values.push(filter.targetUserId) }
      if (filter.targetWorkerId !== undefined) { where.push('target_worker_id = ?'); values.push(filter.targetWorkerId) }
      const limit = Math.min(Math.max(filter.limit ?? 50, 1), 500)
      const sql = `select ${ACTION_COLUMNS} from admin_actions ${where.length ? `where ${where.join(' and ')}` : ''}
        order by id ${filter.after !== undefined ? 'asc' : 'desc'} limit ${limit}`
      return sqlite.prepare<number[], ActionRow>(sql).all(...values).map(toAction)
    },
    async lastActionId() {
      return lastId.get()?.id ?? 0
    },
    async suspendedUsers() {
      return suspended.all().map((row) => row.id)
    },
    async usersWithRole(role) {
      // Roles are a short JSON list: a text match finds candidates, the parsed list decides.
      const rows = sqlite.prepare<[string], { id: number; username: string; roles: string }>(
        'select id, username, roles from users where instr(roles, ?) > 0 order by id').all(JSON.stringify(role))
      return rows.map((row) => ({ ...row, roles: JSON.parse(row.roles) as string[] })).filter((row) => row.roles.includes(role))
    },
    async workers(filter = {}) {
      const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000)
      const offset = Math.max(filter.offset ?? 0, 0)
      const rows = filter.ownerId === undefined
        ? sqlite.prepare<[number, number], WorkerRow>(`select ${WORKER_COLUMNS} order by w.name limit ? offset ?`).all(limit, offset)
        : sqlite.prepare<[number, number, number], WorkerRow>(`select ${WORKER_COLUMNS} where w.owner_id = ? order by w.name limit ? offset ?`).all(filter.ownerId, limit, offset)
      return rows.map(toWorker)
    },
    async workerByName(name) {
      const row = workerByName.get(name)
      return row && toWorker(row)
    },
  }
}
