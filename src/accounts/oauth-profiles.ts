/**
 * What each provider's user-info endpoint answers, reduced to a `ProviderProfile`: the
 * stable id (never the name, which people change) and a name to start a username from.
 */
import type { OAuthProviderName } from '../config.js'
import { BrokerError } from '../errors.js'
import type { ProviderProfile } from './identities.js'

/** Scopes asked for: the least that gives an id and a name. */
export const PROVIDER_SCOPES: Record<OAuthProviderName, string[]> = {
  discord: ['identify'],
  github: ['read:user'],
  google: ['openid', 'profile'],
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  return undefined
}

/** Maps a user-info answer to a profile; throws `login_failed` when it has no usable id. */
export function toProfile(provider: OAuthProviderName, info: Record<string, unknown>): ProviderProfile {
  let subject: string | undefined
  let name: string | undefined
  switch (provider) {
    case 'github':
      subject = text(info.id)
      name = text(info.login) ?? text(info.name)
      break
    case 'discord':
      subject = text(info.id)
      name = text(info.username) ?? text(info.global_name)
      break
    case 'google':
      subject = text(info.sub)
      name = text(info.name) ?? text(info.given_name) ?? text(info.email)?.split('@')[0]
      break
  }
  if (!subject || subject.length > 255) throw new BrokerError('login_failed', 'The provider did not say who you are')
  return { provider, subject, name: (name ?? '').slice(0, 100) }
}

/** Reads the logged-in person from the provider's user-info endpoint with the access token. */
export async function fetchProfile(provider: OAuthProviderName, userInfoUrl: string, accessToken: string, timeoutMs = 10_000): Promise<ProviderProfile> {
  let response: Response
  try {
    response = await fetch(userInfoUrl, {
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json', 'user-agent': 'horde-broker' },
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch {
    throw new BrokerError('login_failed', 'The provider could not be reached')
  }
  if (!response.ok) throw new BrokerError('login_failed', `The provider refused the user lookup (${response.status})`)
  let info: unknown
  try {
    info = await response.json()
  } catch {
    throw new BrokerError('login_failed', 'The provider answered the user lookup with something that is not JSON')
  }
  if (!info || typeof info !== 'object') throw new BrokerError('login_failed', 'The provider did not say who you are')
  return toProfile(provider, info as Record<string, unknown>)
}
