/**
 * OAuth identities on PostgreSQL. A first login takes a transaction-scoped advisory lock on
 * (provider, subject) before it looks the identity up, so two first logins of one person on
 * two processes run one after the other: the second finds the identity the first created.
 */
import type pg from 'pg'
import { BrokerError, isBrokerError } from '../../errors.js'
import type { IdentityProfile, IdentityRecord, IdentityStore, UserRecord } from '../ports.js'
import { createUserRow, toUser, USER_COLUMNS } from './accounts.js'
import type { PgCommitter } from './commit.js'

const COLUMNS = `id, provider, subject, user_id as "userId", display_name as "displayName", created_at as "createdAt",
  last_login_at as "lastLoginAt"`

async function lockIdentity(db: pg.ClientBase, profile: IdentityProfile): Promise<IdentityRecord | undefined> {
  await db.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`identity:${profile.provider}:${profile.subject}`])
  return (await db.query<IdentityRecord>(`select ${COLUMNS} from identities where provider = $1 and subject = $2`, [profile.provider, profile.subject])).rows[0]
}

/** Records a login: the time, and the provider's current name unless it gave none. */
async function recordLogin(db: pg.ClientBase, identity: IdentityRecord, profile: IdentityProfile, at: number): Promise<IdentityRecord> {
  const displayName = profile.name || identity.displayName
  await db.query('update identities set last_login_at = $1, display_name = $2 where id = $3', [at, displayName, identity.id])
  return { ...identity, displayName, lastLoginAt: at }
}

async function insertIdentity(db: pg.ClientBase, profile: IdentityProfile, userId: number, at: number): Promise<IdentityRecord> {
  return (await db.query<IdentityRecord>(`insert into identities (provider, subject, user_id, display_name, created_at, last_login_at)
    values ($1, $2, $3, $4, $5, $5) returning ${COLUMNS}`, [profile.provider, profile.subject, userId, profile.name || null, at])).rows[0]
}

/** The `IdentityStore` on PostgreSQL. */
export function createPgIdentityStore(pool: pg.Pool, commit: PgCommitter): IdentityStore {
  return {
    loginOrCreate(profile, candidates, at) {
      return commit.run(async ({ db }) => {
        const existing = await lockIdentity(db, profile)
        if (existing) {
          await recordLogin(db, existing, profile, at)
          const row = (await db.query<{ id: number; username: string; createdAt: number; roles: string; suspendedAt: number | null }>(`select ${USER_COLUMNS} from users where id = $1`, [existing.userId])).rows[0]
          if (!row) throw new BrokerError('unknown_user')
          return { user: toUser(row), created: false }
        }
        let user: UserRecord | undefined
        for (const username of candidates) {
          try {
            user = await createUserRow(db, { username, roles: [], createdAt: at })
            break
          } catch (error) {
            // ON CONFLICT DO NOTHING leaves the transaction usable: the next name is tried in it.
            if (!isBrokerError(error) || error.code !== 'username_taken') throw error
          }
        }
        if (!user) throw new BrokerError('username_taken')
        await insertIdentity(db, profile, user.id, at)
        return { user, created: true }
      })
    },

    link(userId, profile, at) {
      return commit.run(async ({ db }) => {
        const existing = await lockIdentity(db, profile)
        if (existing) {
          if (existing.userId !== userId) throw new BrokerError('identity_taken')
          return recordLogin(db, existing, profile, at)
        }
        return insertIdentity(db, profile, userId, at)
      })
    },

    async forUser(userId) {
      return (await pool.query<IdentityRecord>(`select ${COLUMNS} from identities where user_id = $1 order by id`, [userId])).rows
    },
  }
}
