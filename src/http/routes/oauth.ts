/**
 * OAuth login with @fastify/oauth2, one registration per configured provider.
 *
 * `GET /auth/:provider/login?next=/path` starts a login; `POST /account/link/:provider`
 * (a page form, CSRF-checked) starts linking one more provider to the logged-in user. Both
 * write a signed, short-lived intent cookie holding the state sent to the provider, the
 * mode, the user (for a link) and where to go after; the callback accepts only a state that
 * matches that cookie, so a login cannot be started by another site (login CSRF) or
 * replayed. The first login creates the user, later logins find it by the provider's id.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { fastifyOauth2, type OAuth2Namespace } from '@fastify/oauth2'
import { fetchProfile, PROVIDER_SCOPES } from '../../accounts/oauth-profiles.js'
import { OAUTH_PROVIDERS, type OAuthProviderName } from '../../config.js'
import { BrokerError } from '../../errors.js'
import type { Services } from '../../services.js'
import { safeNext } from '../../web/security.js'
import type { Sessions } from '../session.js'

const INTENT_COOKIE = 'hb_login'
/** How long a started login may take at the provider, in seconds. */
const INTENT_MAX_AGE = 600

/** PKCE where the provider documents it for web apps; Discord's docs do not. */
const PKCE: Record<OAuthProviderName, boolean> = { discord: false, github: true, google: true }

interface Intent {
  /** Provider. */
  p: OAuthProviderName
  /** State sent to the provider. */
  s: string
  /** Mode. */
  m: 'login' | 'link'
  /** User to link to (link mode). */
  u: number | null
  /** Where to go after. */
  n: string
  /** Started at, ms. */
  t: number
}

export interface OAuthLogins {
  /** Configured providers, in display order. */
  readonly providers: OAuthProviderName[]
  /** Redirects the browser to the provider. */
  begin(request: FastifyRequest, reply: FastifyReply, provider: string, mode: 'login' | 'link', next: string): Promise<FastifyReply>
}

function isProvider(name: string): name is OAuthProviderName {
  return (OAUTH_PROVIDERS as readonly string[]).includes(name)
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export async function registerOAuthRoutes(app: FastifyInstance, services: Services, sessions: Sessions): Promise<OAuthLogins> {
  const { config, identities } = services
  const namespaces = new Map<OAuthProviderName, OAuth2Namespace>()
  const pendingState = new WeakMap<FastifyRequest, string>()

  function readIntent(request: FastifyRequest): Intent | null {
    const raw = request.cookies?.[INTENT_COOKIE]
    if (!raw) return null
    const unsigned = request.unsignCookie(raw)
    if (!unsigned.valid || !unsigned.value) return null
    try {
      const intent = JSON.parse(unsigned.value) as Intent
      if (Date.now() - intent.t > INTENT_MAX_AGE * 1000) return null
      return intent
    } catch {
      return null
    }
  }

  for (const provider of OAUTH_PROVIDERS) {
    const settings = config.web.oauth[provider]
    if (!settings) continue
    const authorize = new URL(settings.authorizeUrl)
    const token = new URL(settings.tokenUrl)
    const name = `hbOauth${provider[0].toUpperCase()}${provider.slice(1)}`
    await app.register(fastifyOauth2, {
      name,
      scope: PROVIDER_SCOPES[provider],
      credentials: {
        client: { id: settings.clientId, secret: settings.clientSecret },
        auth: {
          authorizeHost: authorize.origin, authorizePath: authorize.pathname + authorize.search,
          tokenHost: token.origin, tokenPath: token.pathname + token.search,
        },
        // GitHub and Discord accept the client secret in the body; Google too.
        options: { authorizationMethod: 'body' },
      },
      callbackUri: () => new URL(`/auth/${provider}/callback`, sessions.publicUrl()).href,
      pkce: PKCE[provider] ? 'S256' : undefined,
      // The plugin's own cookies: one pair per provider, signed, scoped to the callback.
      redirectStateCookieName: `hb_oauth_state_${provider}`,
      verifierCookieName: `hb_oauth_pkce_${provider}`,
      cookie: sessions.cookieOptions({ path: `/auth/${provider}`, maxAge: INTENT_MAX_AGE }),
      generateStateFunction: (request: FastifyRequest) => {
        const state = pendingState.get(request)
        if (!state) throw new Error('a login must start from begin()')
        return state
      },
      checkStateFunction: (request: FastifyRequest) => {
        const intent = readIntent(request)
        const state = (request.query as { state?: unknown }).state
        return !!intent && intent.p === provider && typeof state === 'string' && sameText(intent.s, state)
      },
      userAgent: 'horde-broker',
    })
    namespaces.set(provider, (app as unknown as Record<string, OAuth2Namespace>)[name])
  }

  async function begin(request: FastifyRequest, reply: FastifyReply, providerName: string, mode: 'login' | 'link', next: string): Promise<FastifyReply> {
    const provider = isProvider(providerName) ? providerName : undefined
    const namespace = provider && namespaces.get(provider)
    if (!provider || !namespace) throw new BrokerError('unknown_provider')
    const state = randomBytes(24).toString('base64url')
    pendingState.set(request, state)
    const uri = await namespace.generateAuthorizationUri(request, reply)
    const intent: Intent = { p: provider, s: state, m: mode, u: mode === 'link' ? request.session?.userId ?? null : null, n: safeNext(next), t: Date.now() }
    reply.setCookie(INTENT_COOKIE, JSON.stringify(intent), sessions.cookieOptions({ path: '/auth', maxAge: INTENT_MAX_AGE }))
    return reply.redirect(uri, 303)
  }

  app.get<{ Params: { provider: string }; Querystring: { next?: string } }>('/auth/:provider/login', { schema: { hide: true }, config: { rateLimit: loginLimit(services) } }, async (request, reply) =>
    begin(request, reply, request.params.provider, 'login', safeNext(request.query.next)))

  app.get<{ Params: { provider: string }; Querystring: Record<string, string | undefined> }>('/auth/:provider/callback', { schema: { hide: true }, config: { rateLimit: loginLimit(services) } }, async (request, reply) => {
    const provider = isProvider(request.params.provider) ? request.params.provider : undefined
    const namespace = provider && namespaces.get(provider)
    if (!provider || !namespace) throw new BrokerError('unknown_provider')
    const intent = readIntent(request)
    reply.clearCookie(INTENT_COOKIE, sessions.cookieOptions({ path: '/auth' }))
    if (request.query.error) throw new BrokerError('login_failed', `The provider did not log you in (${String(request.query.error).slice(0, 60)})`)
    let accessToken: string
    try {
      const token = await namespace.getAccessTokenFromAuthorizationCodeFlow(request, reply)
      accessToken = token.token.access_token
    } catch (error) {
      if ((error as Error).message === 'Invalid state') {
        throw new BrokerError('login_failed', 'This login did not start here or took too long (state mismatch): log in again')
      }
      request.log.warn({ err: error, provider }, 'OAuth token exchange failed')
      throw new BrokerError('login_failed', 'The provider did not accept the login')
    }
    if (!intent || typeof accessToken !== 'string') throw new BrokerError('login_failed')
    const profile = await fetchProfile(provider, config.web.oauth[provider]!.userInfoUrl, accessToken)

    if (intent.m === 'link') {
      // Link only into the account that asked, still logged in in this browser.
      if (!request.session || request.session.userId !== intent.u) throw new BrokerError('login_required', 'Log in again before linking another login')
      await identities.link(request.session.userId, profile)
      request.log.info({ user: request.session.userId, provider }, 'login linked')
      return reply.redirect('/account?done=linked', 303)
    }
    const { user, created } = await identities.login(profile)
    await sessions.start(reply, user.id)
    request.log.info({ user: user.id, provider, created }, 'logged in')
    return reply.redirect(intent.n, 303)
  })

  return { providers: [...namespaces.keys()], begin }
}

/** The rate limit of every way in (key login, OAuth start and callback, account link): per address, across processes. */
export function loginLimit(services: Services) {
  return { max: services.config.limits.loginsPerMinute, timeWindow: 60_000, keyGenerator: (request: FastifyRequest) => `login:${request.ip}` }
}
