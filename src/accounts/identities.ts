/**
 * Logins at OAuth providers, linked to users. The first login with an identity creates a
 * user (the same account model and username rule as REST registration), named
 * after the provider's name for the person; later logins find that user again by the
 * provider's stable id. A logged-in user may link more providers.
 */
import type { IdentityRecord, Store } from '../store/ports.js'
import { USERNAME, checkUsername, type User } from './accounts.js'
import { isReservedName } from '../core/worker-names.js'

/** An OAuth login linked to a user, as stored. */
export type Identity = IdentityRecord

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
  login(profile: ProviderProfile): Promise<LoginResult>
  /** Links this identity to `userId`; throws `identity_taken` when it belongs to someone else. */
  link(userId: number, profile: ProviderProfile): Promise<Identity>
  forUser(userId: number): Promise<Identity[]>
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

/** The candidates, each checked against the username rule as registration checks a name; reserved words are skipped (`admin` becomes `admin-2`). */
function* checked(candidates: Iterable<string>): Generator<string> {
  for (const candidate of candidates) {
    if (isReservedName(candidate)) continue
    checkUsername(candidate)
    yield candidate
  }
}

export function createIdentities(store: Pick<Store, 'identities'>): Identities {
  const identities = store.identities
  return {
    login(profile) {
      // The store tries the candidates in order inside one transaction, so two first logins
      // of the same person racing cannot both create a user.
      return identities.loginOrCreate(profile, checked(usernameCandidates(usernameBase(profile.name, profile.provider))), Date.now())
    },
    link(userId, profile) {
      return identities.link(userId, profile, Date.now())
    },
    forUser(userId) {
      return identities.forUser(userId)
    },
  }
}
