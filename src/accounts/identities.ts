/**
 * Logins at OAuth providers, linked to users. The first login with an identity creates a
 * user through `accounts.createUser` (the same account model as REST registration), named
 * after the provider's name for the person; later logins find that user again by the
 * provider's stable id. A logged-in user may link more providers.
 */
import { and, eq } from 'drizzle-orm'
import type { Db } from '../db/open.js'
import { identities, type Identity, type User } from '../db/schema.js'
import { BrokerError, isBrokerError } from '../errors.js'
import { USERNAME, type Accounts } from './accounts.js'

/** What a provider tells us about the person, reduced to what we keep. */
export interface ProviderProfile {
  provider: string
  /** The provider's stable id for the person. */
  subject: string
  /** A human name to derive a username from and to show; may be empty. */
  name: string
}

export interface LoginResult {
  user: User
  /** True when this login created the user. */
  created: boolean
}

export interface Identities {
  /** Finds the user of this identity, or creates one and links it, in one transaction. */
  login(profile: ProviderProfile): LoginResult
  /** Links this identity to `userId`; throws `identity_taken` when it belongs to someone else. */
  link(userId: number, profile: ProviderProfile): Identity
  forUser(userId: number): Identity[]
}

/**
 * Turns a provider's display name into a username candidate: letters and digits kept
 * (accents dropped), spaces to `_`, other characters removed, 2-32 characters, not only
 * digits. Falls back to `<provider>-user`.
 */
export function usernameBase(name: string, provider: string): string {
  let base = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/\s+/g, '_').replace(/[^A-Za-z0-9_.-]/g, '')
    .replace(/^[^A-Za-z0-9]+/, '').slice(0, 32)
  if (/^\d+$/.test(base)) base = `u${base}`.slice(0, 32)
  if (!USERNAME.test(base)) base = `${provider}-user`
  return base
}

/** Candidate names in the order they are tried: `name`, `name-2` … `name-99`, then random suffixes. */
export function* usernameCandidates(base: string): Generator<string> {
  yield base
  for (let n = 2; n < 100; n++) {
    const suffix = `-${n}`
    yield base.slice(0, 32 - suffix.length) + suffix
  }
  for (;;) {
    const suffix = `-${Math.random().toString(36).slice(2, 8)}`
    yield base.slice(0, 32 - suffix.length) + suffix
  }
}

export function createIdentities(db: Db, accounts: Accounts): Identities {
  function find(provider: string, subject: string): Identity | undefined {
    return db.select().from(identities).where(and(eq(identities.provider, provider), eq(identities.subject, subject))).get()
  }

  function touch(identity: Identity, profile: ProviderProfile): void {
    db.update(identities).set({ lastLoginAt: Date.now(), displayName: profile.name || identity.displayName })
      .where(eq(identities.id, identity.id)).run()
  }

  return {
    login(profile) {
      // Immediate: two first logins of the same person racing cannot both create a user.
      return db.transaction(() => {
        const existing = find(profile.provider, profile.subject)
        if (existing) {
          touch(existing, profile)
          const user = accounts.byId(existing.userId)
          if (!user) throw new BrokerError('unknown_user')
          return { user, created: false }
        }
        let user: User | undefined
        for (const candidate of usernameCandidates(usernameBase(profile.name, profile.provider))) {
          try {
            user = accounts.createUser(candidate)
            break
          } catch (error) {
            if (!isBrokerError(error) || error.code !== 'username_taken') throw error
          }
        }
        const now = Date.now()
        db.insert(identities).values({ provider: profile.provider, subject: profile.subject, userId: user!.id, displayName: profile.name || null, createdAt: now, lastLoginAt: now }).run()
        return { user: user!, created: true }
      }, { behavior: 'immediate' })
    },

    link(userId, profile) {
      return db.transaction(() => {
        const existing = find(profile.provider, profile.subject)
        if (existing) {
          if (existing.userId !== userId) throw new BrokerError('identity_taken')
          touch(existing, profile)
          return existing
        }
        const now = Date.now()
        return db.insert(identities).values({ provider: profile.provider, subject: profile.subject, userId, displayName: profile.name || null, createdAt: now, lastLoginAt: now }).returning().get()
      }, { behavior: 'immediate' })
    },

    forUser(userId) {
      return db.select().from(identities).where(eq(identities.userId, userId)).orderBy(identities.id).all()
    },
  }
}
