/**
 * OAuth identities on SQLite. A first login creates its user and links the identity in one
 * immediate transaction, so two first logins of one person racing cannot make two users.
 */
import type Database from 'better-sqlite3'
import { BrokerError, isBrokerError } from '../../errors.js'
import type { IdentityProfile, IdentityRecord, IdentityStore, UserRecord } from '../ports.js'
import { toUser, type UserWriter } from './accounts.js'
import type { Committer } from './commit.js'

const COLUMNS = `id, provider, subject, user_id as userId, display_name as displayName, created_at as createdAt,
  last_login_at as lastLoginAt`

/** The `IdentityStore` on SQLite: logins and links through `commit`, creating users with `users`. */
export function createSqliteIdentityStore(sqlite: Database.Database, commit: Committer, users: UserWriter): IdentityStore {
  const find = sqlite.prepare<[string, string], IdentityRecord>(`select ${COLUMNS} from identities where provider = ? and subject = ?`)
  const touch = sqlite.prepare('update identities set last_login_at = ?, display_name = ? where id = ?')
  const insert = sqlite.prepare<[string, string, number, string | null, number, number], IdentityRecord>(
    `insert into identities (provider, subject, user_id, display_name, created_at, last_login_at) values (?, ?, ?, ?, ?, ?) returning ${COLUMNS}`)
  const forUser = sqlite.prepare<[number], IdentityRecord>(`select ${COLUMNS} from identities where user_id = ? order by id`)
  const userById = sqlite.prepare<[number], { id: number; username: string; createdAt: number; roles: string; suspendedAt: number | null }>(
    'select id, username, created_at as createdAt, roles, suspended_at as suspendedAt from users where id = ?')

  /** Records a login: the time, and the provider's current name unless it gave none. */
  function recordLogin(identity: IdentityRecord, profile: IdentityProfile, at: number): IdentityRecord {
    const displayName = profile.name || identity.displayName
    touch.run(at, displayName, identity.id)
    return { ...identity, displayName, lastLoginAt: at }
  }

  return {
    loginOrCreate(profile, candidates, at) {
      return commit.run(() => {
        const existing = find.get(profile.provider, profile.subject)
        if (existing) {
          recordLogin(existing, profile, at)
          const row = userById.get(existing.userId)
          if (!row) throw new BrokerError('unknown_user')
          return { user: toUser(row), created: false }
        }
        let user: UserRecord | undefined
        for (const username of candidates) {
          try {
            user = users.create({ username, roles: [], createdAt: at })
            break
          } catch (error) {
            if (!isBrokerError(error) || error.code !== 'username_taken') throw error
          }
        }
        if (!user) throw new BrokerError('username_taken')
        insert.get(profile.provider, profile.subject, user.id, profile.name || null, at, at)
        return { user, created: true }
      })
    },

    link(userId, profile, at) {
      return commit.run(() => {
        const existing = find.get(profile.provider, profile.subject)
        if (existing) {
          if (existing.userId !== userId) throw new BrokerError('identity_taken')
          return recordLogin(existing, profile, at)
        }
        return insert.get(profile.provider, profile.subject, userId, profile.name || null, at, at)!
      })
    },

    async forUser(userId) {
      return forUser.all(userId)
    },
  }
}
