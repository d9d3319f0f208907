/**
 * Browser sessions: a signed, httpOnly, SameSite=Lax cookie (Secure when PUBLIC_URL is
 * https) holding the user id, a random session nonce and the issue time. The signature
 * (SESSION_SECRET) makes the cookie trusted, the issue time bounds its life, and a row in
 * the `sessions` table (keyed by the nonce's SHA-256) keeps it alive: logout deletes the row,
 * "log out everywhere" and a suspension delete all of the user's, so a copied cookie stops
 * working on every process sharing the database. The CSRF token of a session is an HMAC of
 * its nonce, so every form of that session carries the same token.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { Config } from '../config.js'
import { BrokerError } from '../errors.js'
import type { SessionStore } from '../store/ports.js'

export const SESSION_COOKIE = 'hb_session'
/** Header a script sends the CSRF token in; forms send the `_csrf` field. */
export const CSRF_HEADER = 'x-csrf-token'
export const CSRF_FIELD = '_csrf'

export interface Session {
  userId: number
  /** Random, per login: the CSRF token is derived from it. */
  nonce: string
  /** Seconds since the epoch. */
  issuedAt: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The browser session, when a valid session cookie (and no API key) came with the request. */
    session: Session | null
  }
}

export interface Sessions {
  /** The session of a valid cookie whose row the server still holds, else null. */
  read(request: FastifyRequest): Promise<Session | null>
  start(reply: FastifyReply, userId: number): Promise<Session>
  /** Ends the request's session on the server (if any) and clears the cookie. */
  end(request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Ends every session of the user, this one included; returns how many. */
  endAll(userId: number): Promise<number>
  csrfToken(session: Session): string
  /** Throws `csrf_failed` unless the request carries its session's token (header or form field). */
  checkCsrf(request: FastifyRequest): void
  /** Options for any cookie the web pages set (httpOnly, Lax, Secure over https). */
  cookieOptions(extra?: CookieSerializeOptions): CookieSerializeOptions
  /** The public origin, with the real port when the broker listens on port 0 (tests). */
  publicUrl(): URL
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method)
}

/** The stored id of a session: the SHA-256 of its nonce, so the table never holds a usable cookie. */
function sessionId(nonce: string): string {
  return createHash('sha256').update(nonce).digest('hex')
}

export function createSessions(app: FastifyInstance, config: Config, store: SessionStore): Sessions {
  const secret = config.web.sessionSecret
  const secure = new URL(config.publicUrl).protocol === 'https:'
  const maxAge = config.web.sessionMaxAgeSeconds

  function cookieOptions(extra: CookieSerializeOptions = {}): CookieSerializeOptions {
    return { path: '/', httpOnly: true, sameSite: 'lax', secure, signed: true, ...extra }
  }

  function csrfToken(session: Session): string {
    return createHmac('sha256', secret).update(`csrf:${session.userId}:${session.nonce}`).digest('base64url')
  }

  /** The cookie's session when its signature and age are good; the server's row is not looked at. */
  function parse(request: FastifyRequest): Session | null {
    const raw = request.cookies?.[SESSION_COOKIE]
    if (!raw) return null
    const unsigned = request.unsignCookie(raw)
    if (!unsigned.valid || !unsigned.value) return null
    const match = /^(\d{1,15})\.([A-Za-z0-9_-]{16,64})\.(\d{1,12})$/.exec(unsigned.value)
    if (!match) return null
    const session = { userId: Number(match[1]), nonce: match[2], issuedAt: Number(match[3]) }
    const age = Date.now() / 1000 - session.issuedAt
    if (age < -60 || age > maxAge) return null
    return session
  }

  return {
    async read(request) {
      const session = parse(request)
      if (!session) return null
      return (await store.isActive(sessionId(session.nonce), session.userId, Date.now())) ? session : null
    },

    async start(reply, userId) {
      const now = Date.now()
      const session = { userId, nonce: randomBytes(18).toString('base64url'), issuedAt: Math.floor(now / 1000) }
      await store.start({ id: sessionId(session.nonce), userId, createdAt: now, expiresAt: (session.issuedAt + maxAge) * 1000 })
      reply.setCookie(SESSION_COOKIE, `${session.userId}.${session.nonce}.${session.issuedAt}`, cookieOptions({ maxAge }))
      return session
    },

    async end(request, reply) {
      const session = parse(request)
      if (session) await store.end(sessionId(session.nonce))
      reply.clearCookie(SESSION_COOKIE, cookieOptions())
    },

    endAll: (userId) => store.endAll(userId),

    csrfToken,

    checkCsrf(request) {
      const session = request.session
      if (!session) return
      const header = request.headers[CSRF_HEADER]
      const body = request.body as Record<string, unknown> | undefined
      const presented = typeof header === 'string' ? header : (body && typeof body === 'object' ? body[CSRF_FIELD] : undefined)
      const expected = Buffer.from(csrfToken(session))
      const given = Buffer.from(typeof presented === 'string' ? presented : '')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new BrokerError('csrf_failed')
    },

    cookieOptions,

    publicUrl() {
      const url = new URL(config.publicUrl)
      if (url.port === '0') {
        const address = app.server.address()
        if (address && typeof address === 'object') url.port = String(address.port)
      }
      return url
    },
  }
}
