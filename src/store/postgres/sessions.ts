/** Browser sessions on PostgreSQL: every process reads the same rows, so an ended session ends everywhere. */
import type pg from 'pg'
import type { SessionStore } from '../ports.js'
import type { PgCommitter } from './commit.js'

export function createPgSessionStore(pool: pg.Pool, commit: PgCommitter): SessionStore {
  return {
    start(row) {
      return commit.run(async ({ db }) => {
        await db.query('delete from sessions where expires_at < $1', [row.createdAt])
        await db.query('insert into sessions (id, user_id, created_at, expires_at) values ($1, $2, $3, $4)', [row.id, row.userId, row.createdAt, row.expiresAt])
      })
    },
    async isActive(id, userId, now) {
      return (await pool.query('select 1 from sessions where id = $1 and user_id = $2 and expires_at > $3', [id, userId, now])).rows.length > 0
    },
    end(id) {
      return commit.run(async ({ db }) => (await db.query('delete from sessions where id = $1', [id])).rowCount! > 0)
    },
    endAll(userId) {
      return commit.run(async ({ db }) => (await db.query('delete from sessions where user_id = $1', [userId])).rowCount ?? 0)
    },
  }
}
