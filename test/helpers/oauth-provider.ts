/**
 * A small OAuth2 provider on loopback for tests: authorize (approves at once as the person
 * the test chose), token (checks client, code, redirect URI and PKCE), and user-info (in the
 * shape of the provider it stands in for). One instance can stand in for several providers.
 */
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestLike } from './harness.js'

export interface FakePerson {
  id: string
  name: string
}

interface Grant {
  person: FakePerson
  provider: string
  redirectUri: string
  clientId: string
  challenge: string | null
}

export interface FakeProvider {
  /** http://127.0.0.1:PORT */
  url: string
  /** Who approves the next authorization, per provider. */
  as(provider: string, person: FakePerson): void
  /** The environment that points the broker's provider at this server. */
  env(provider: string): Record<string, string>
  /** Every authorize call seen, for assertions (state, scope, PKCE). */
  readonly authorizeCalls: URLSearchParams[]
  /** Token exchanges refused, with the reason. */
  readonly refusals: string[]
  close(): Promise<void>
}

function userInfo(provider: string, person: FakePerson): Record<string, unknown> {
  switch (provider) {
    case 'github': return { id: Number(person.id), login: person.name, name: `${person.name} (full name)` }
    case 'discord': return { id: person.id, username: person.name, global_name: person.name }
    default: return { sub: person.id, name: person.name, email: `${person.name}@example.test` }
  }
}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    request.setEncoding('utf8')
    request.on('data', (chunk) => { text += chunk })
    request.on('end', () => resolve(text))
    request.on('error', reject)
  })
}

export async function startFakeProvider(t: TestLike): Promise<FakeProvider> {
  const people = new Map<string, FakePerson>()
  const grants = new Map<string, Grant>()
  const tokens = new Map<string, { person: FakePerson; provider: string }>()
  const authorizeCalls: URLSearchParams[] = []
  const refusals: string[] = []
  const clients = new Map<string, { secret: string; provider: string }>()

  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1')
    const [, provider, action] = url.pathname.split('/')
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' })
      response.end(JSON.stringify(body))
    }
    if (action === 'authorize' && request.method === 'GET') {
      authorizeCalls.push(url.searchParams)
      const person = people.get(provider)
      const redirectUri = url.searchParams.get('redirect_uri') ?? ''
      const clientId = url.searchParams.get('client_id') ?? ''
      if (!person || !clients.has(clientId) || url.searchParams.get('response_type') !== 'code') return json(400, { error: 'invalid_request' })
      const code = randomBytes(12).toString('hex')
      grants.set(code, { person, provider, redirectUri, clientId, challenge: url.searchParams.get('code_challenge') })
      const back = new URL(redirectUri)
      back.searchParams.set('code', code)
      back.searchParams.set('state', url.searchParams.get('state') ?? '')
      response.writeHead(302, { location: back.href })
      return response.end()
    }
    if (action === 'token' && request.method === 'POST') {
      const body = new URLSearchParams(await readBody(request))
      const code = body.get('code') ?? ''
      const grant = grants.get(code)
      grants.delete(code)
      const client = clients.get(body.get('client_id') ?? '')
      let refusal: string | null = null
      if (!grant) refusal = 'unknown or reused code'
      else if (!client || client.secret !== body.get('client_secret')) refusal = 'bad client credentials'
      else if (body.get('redirect_uri') !== grant.redirectUri) refusal = 'redirect_uri differs'
      else if (grant.challenge && createHash('sha256').update(body.get('code_verifier') ?? '').digest('base64url') !== grant.challenge) refusal = 'PKCE verifier does not match'
      if (refusal || !grant) {
        refusals.push(refusal ?? 'no grant')
        return json(400, { error: 'invalid_grant', error_description: refusal })
      }
      const token = randomBytes(16).toString('hex')
      tokens.set(token, { person: grant.person, provider: grant.provider })
      return json(200, { access_token: token, token_type: 'bearer', expires_in: 3600, scope: 'x' })
    }
    if (action === 'userinfo' && request.method === 'GET') {
      const auth = request.headers.authorization ?? ''
      const token = tokens.get(auth.replace(/^Bearer /, ''))
      if (!token || token.provider !== provider) return json(401, { message: 'Bad credentials' })
      return json(200, userInfo(provider, token.person))
    }
    json(404, { error: 'not_found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const close = () => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
  t.teardown(close)

  return {
    url,
    as(provider, person) {
      people.set(provider, person)
    },
    env(provider) {
      const upper = provider.toUpperCase()
      const id = `client-${provider}`
      clients.set(id, { secret: `secret-${provider}`, provider })
      return {
        [`OAUTH_${upper}_CLIENT_ID`]: id,
        [`OAUTH_${upper}_CLIENT_SECRET`]: `secret-${provider}`,
        [`OAUTH_${upper}_AUTHORIZE_URL`]: `${url}/${provider}/authorize`,
        [`OAUTH_${upper}_TOKEN_URL`]: `${url}/${provider}/token`,
        [`OAUTH_${upper}_USERINFO_URL`]: `${url}/${provider}/userinfo`,
      }
    },
    authorizeCalls,
    refusals,
    close,
  }
}

/** A cookie jar and manual redirects: just enough browser to walk the OAuth flow with fetch. */
export class CookieClient {
  readonly cookies = new Map<string, string>()

  constructor(readonly base: string) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()))
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  /** One request; cookies are sent only to the broker's origin. */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url, this.base)
    const headers = new Headers(init.headers)
    if (target.origin === new URL(this.base).origin && this.cookies.size > 0) headers.set('cookie', this.cookieHeader())
    const response = await fetch(target, { ...init, headers, redirect: 'manual' })
    if (target.origin === new URL(this.base).origin) this.store(response)
    return response
  }

  /** Follows redirects (GET after a 303/302) until a non-redirect answer; returns it and the final URL. */
  async follow(url: string, init: RequestInit = {}, limit = 10): Promise<{ response: Response; url: string; hops: string[] }> {
    let current = new URL(url, this.base).href
    let response = await this.request(current, init)
    const hops = [current]
    while (response.status >= 300 && response.status < 400 && limit-- > 0) {
      current = new URL(response.headers.get('location')!, current).href
      hops.push(current)
      response = await this.request(current)
    }
    return { response, url: current, hops }
  }

  /** Posts a form like a browser: urlencoded fields. */
  post(url: string, form: Record<string, string | string[]>): Promise<{ response: Response; url: string; hops: string[] }> {
    const body = new URLSearchParams()
    for (const [k, v] of Object.entries(form)) for (const item of Array.isArray(v) ? v : [v]) body.append(k, item)
    return this.follow(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  }
}

/** The CSRF token of the page's forms. */
export function csrfOf(page: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(page)
  if (!match) throw new Error('no CSRF field on the page')
  return match[1]
}

export const SESSION_SECRET = 'test-session-secret-0123456789abcdef0123456789'
