/**
 * Browser sessions: a signed, httpOnly, SameSite=Lax cookie (Secure when PUBLIC_URL is
 * https) holding the user id, a random session nonce and the issue time. No server state:
 * the signature (SESSION_SECRET) is what makes it trusted, the issue time bounds its life.
 * The CSRF token of a session is an HMAC of its nonce, so every form of that session
 * carries the same token and nothing needs to be stored.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { Config } from '../config.js'
import { BrokerError } from '../errors.js'

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
  read(request: FastifyRequest): Session | null
  start(reply: FastifyReply, userId: number): Session
  end(reply: FastifyReply): void
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

export function createSessions(app: FastifyInstance, config: Config): Sessions {
  const secret = config.web.sessionSecret
  const secure = new URL(config.publicUrl).protocol === 'https:'
  const maxAge = config.web.sessionMaxAgeSeconds

  function cookieOptions(extra: CookieSerializeOptions = {}): CookieSerializeOptions {
    return { path: '/', httpOnly: true, sameSite: 'lax', secure, signed: true, ...extra }
  }

  function csrfToken(session: Session): string {
    return createHmac('sha256', secret).update(`csrf:${session.userId}:${session.nonce}`).digest('base64url')
  }

  return {
    read(request) {
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
    },

    start(reply, userId) {
      const session = { userId, nonce: randomBytes(18).toString('base64url'), issuedAt: Math.floor(Date.now() / 1000) }
      reply.setCookie(SESSION_COOKIE, `${session.userId}.${session.nonce}.${session.issuedAt}`, cookieOptions({ maxAge }))
      return session
    },

    end(reply) {
      reply.clearCookie(SESSION_COOKIE, cookieOptions())
    },

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
