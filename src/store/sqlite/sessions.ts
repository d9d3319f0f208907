/** Browser sessions on SQLite: writes through the committer, the check a prepared read. */
import type Database from 'better-sqlite3'
import type { SessionStore } from '../ports.js'
import type { Committer } from './commit.js'

export function createSqliteSessionStore(sqlite: Database.Database, commit: Committer): SessionStore {
  const insert = sqlite.prepare('insert into sessions (id, user_id, created_at, expires_at) values (?, ?, ?, ?)')
  const expire = sqlite.prepare('delete from sessions where expires_at < ?')
  const active = sqlite.prepare<[string, number, number], { ok: number }>('select 1 as ok from sessions where id = ? and user_id = ? and expires_at > ?')
  const end = sqlite.prepare('delete from sessions where id = ?')
  const endAll = sqlite.prepare('delete from sessions where user_id = ?')
  return {
    start(row) {
      return commit.run(() => {
        expire.run(row.createdAt)
        insert.run(row.id, row.userId, row.createdAt, row.expiresAt)
      })
    },
    async isActive(id, userId, now) {
      return active.get(id, userId, now) !== undefined
    },
    end(id) {
      return commit.run(() => end.run(id).changes > 0)
    },
    endAll(userId) {
      return commit.run(() => endAll.run(userId).changes)
    },
  }
}
