/**
 * The web pages: status `/`, `/login`, `/account` (and its forms), `/playground`, the static
 * files they use, and the OAuth routes. Registered in their own encapsulated context so that
 * form bodies are parsed and errors rendered as HTML here only; REST stays JSON-only.
 * Every POST here is CSRF-checked by the app-wide hook (the form's `_csrf` field).
 */
import { createHash, randomUUID } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SCOPES } from '../../accounts/accounts.js'
import { BrokerError, isBrokerError } from '../../errors.js'
import { toKudos } from '../../economy/amounts.js'
import type { Services } from '../../services.js'
import { formatKudos } from '../../web/html.js'
import type { PageViewer } from '../../web/layout.js'
import { accountPage, type AccountPageModel, type TransferForm } from '../../web/pages/account.js'
import { homePage } from '../../web/pages/home.js'
import { errorPage, loginPage } from '../../web/pages/login.js'
import { playgroundPage } from '../../web/pages/playground.js'
import { safeNext } from '../../web/security.js'
import { modelRows } from '../../web/horde-view.js'
import { toBrokerError } from '../error-answer.js'
import { createFlash } from '../flash.js'
import type { Sessions } from '../session.js'
import { loginLimit, registerOAuthRoutes } from './oauth.js'
import { registerHordePages } from './pages.js'

/** A parsed form: repeated fields become arrays. */
export type FormBody = Record<string, string | string[]>

export function parseForm(text: string): FormBody {
  const body: FormBody = {}
  for (const [key, value] of new URLSearchParams(text)) {
    const previous = body[key]
    body[key] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value]
  }
  return body
}

function field(body: FormBody | undefined, name: string): string {
  const value = body?.[name]
  return (Array.isArray(value) ? value[0] : value ?? '').trim()
}

function fields(body: FormBody | undefined, name: string): string[] {
  const value = body?.[name]
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}

const require = createRequire(import.meta.url)
const STATIC_DIR = fileURLToPath(new URL('../../web/static/', import.meta.url))
const STATIC_TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' }

/** Files served under /static, read once: only these names exist. */
function loadStatic(): Map<string, { body: Buffer; type: string; etag: string }> {
  const files = new Map<string, { body: Buffer; type: string; etag: string }>()
  for (const name of fs.readdirSync(STATIC_DIR)) {
    const type = STATIC_TYPES[name.split('.').pop() ?? '']
    if (!type) continue
    const body = fs.readFileSync(STATIC_DIR + name)
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` })
  }
  // uPlot, from the package (no CDN): the charts' library and its stylesheet.
  for (const [name, file] of [['uplot.js', 'uPlot.iife.min.js'], ['uplot.css', 'uPlot.min.css']]) {
    const body = fs.readFileSync(require.resolve(`uplot/dist/${file}`))
    files.set(name, { body, type: STATIC_TYPES[name.split('.').pop()!], etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` })
  }
  return files
}

const LOGIN_FAILURES: Record<string, string> = {
  key: 'That API key is not valid (mistyped, or revoked).',
  scope: 'That key has limited scopes. Logging in needs a key with every scope (`all`), such as the one you got when you registered.',
}

/** What a form's POST leaves for the GET after its redirect. */
interface AccountFlash {
  newKey?: AccountPageModel['newKey']
  notice?: AccountPageModel['notice']
  transfer?: TransferForm
}

const DONE_MESSAGES: Record<string, string> = {
  revoked: 'The key was revoked.',
  linked: 'The login was linked to your account.',
}

/** Rows per ledger page. */
export const LEDGER_PAGE = 25

export async function registerWebRoutes(root: FastifyInstance, services: Services, sessions: Sessions): Promise<void> {
  const { accounts, ledger, store, identities, transfers, config } = services
  const staticFiles = loadStatic()
  const flash = createFlash(services.redis, config.redisPrefix)

  function viewer(request: FastifyRequest): PageViewer {
    if (!request.session) return { username: null, csrf: null }
    return { username: request.principal.username, csrf: sessions.csrfToken(request.session) }
  }

  function sendPage(reply: FastifyReply, page: string, status = 200): FastifyReply {
    return reply.status(status).type('text/html; charset=utf-8').send(page)
  }

  await root.register(async (app) => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
      done(null, parseForm(body as string))
    })

    app.setErrorHandler((error: Error & { code?: string; statusCode?: number; validation?: unknown }, request, reply) => {
      const answer = toBrokerError(error)
      if (answer.status >= 500) request.log.error({ err: error }, 'page failed')
      return sendPage(reply, errorPage(viewer(request), answer.status, answer.message), answer.status)
    })

    const oauth = await registerOAuthRoutes(app, services, sessions)

    app.get<{ Params: { name: string } }>('/static/:name', { schema: { hide: true } }, async (request, reply) => {
      const file = staticFiles.get(request.params.name)
      if (!file) throw new BrokerError('not_found')
      reply.header('etag', file.etag).header('cache-control', 'no-cache')
      if (request.headers['if-none-match'] === file.etag) return reply.status(304).send()
      return reply.type(file.type).send(file.body)
    })

    app.get('/', { schema: { hide: true } }, async (request, reply) => sendPage(reply, homePage(viewer(request), await services.status.snapshot())))

    app.get<{ Querystring: { next?: string; failed?: string } }>('/login', { schema: { hide: true } }, async (request, reply) =>
      sendPage(reply, loginPage(viewer(request), oauth.providers, safeNext(request.query.next), LOGIN_FAILURES[request.query.failed ?? ''])))

    app.post('/logout', { schema: { hide: true } }, async (request, reply) => {
      await sessions.end(request, reply)
      return reply.redirect('/', 303)
    })

    // Ends every session of the logged-in user (other browsers, a copied cookie), this one too.
    app.post('/logout/everywhere', { schema: { hide: true } }, async (request, reply) => {
      if (request.session) await sessions.endAll(request.session.userId)
      await sessions.end(request, reply)
      return reply.redirect('/', 303)
    })

    app.get('/playground', { schema: { hide: true } }, async (request, reply) =>
      sendPage(reply, playgroundPage(viewer(request), (await modelRows(services.horde)).served, config.limits)))

    registerHordePages(app, services, { viewer, sendPage, flash, publicUrl: () => sessions.publicUrl().href.replace(/\/$/, '') })

    // A way in without an OAuth provider: a key of the `all` scope opens a browser session
    // (a narrower key would give the session more than the key may do).
    app.post<{ Body: FormBody }>('/login/key', { schema: { hide: true }, config: { rateLimit: loginLimit(services) } }, async (request, reply) => {
      const next = safeNext(field(request.body, 'next'))
      let principal
      try {
        principal = await accounts.authenticate(field(request.body, 'key') || undefined)
      } catch {
        return reply.redirect(`/login?failed=key&next=${encodeURIComponent(next)}`, 303)
      }
      if (principal.anonymous) return reply.redirect(`/login?failed=key&next=${encodeURIComponent(next)}`, 303)
      if (principal.keyId === null || !SCOPES.every((scope) => principal.scopes.has(scope))) {
        return reply.redirect(`/login?failed=scope&next=${encodeURIComponent(next)}`, 303)
      }
      await sessions.start(reply, principal.userId)
      return reply.redirect(next, 303)
    })

    /** The logged-in page user, or a redirect to the login page. */
    function pageUser(request: FastifyRequest, reply: FastifyReply): { userId: number } | null {
      if (!request.session) {
        // After logging in, come back to this page (a form's target is not a page: the account).
        const next = request.method === 'GET' ? safeNext(request.url) : '/account'
        void reply.redirect(`/login?next=${encodeURIComponent(next)}`, 303)
        return null
      }
      return { userId: request.session.userId }
    }

    async function accountModel(request: FastifyRequest, userId: number, extra: Partial<AccountPageModel> & { before?: number } = {}): Promise<AccountPageModel> {
      const user = await accounts.byId(userId)
      if (!user) throw new BrokerError('unknown_user')
      const before = extra.before
      const entries = await ledger.entries(userId, { before, limit: LEDGER_PAGE })
      const ids = [...new Set(entries.map((e) => e.counterpartyId).filter((id): id is number => id !== null))]
      const [counterparties, linked, account, keys, workers] = await Promise.all([
        accounts.byIds(ids), identities.forUser(userId), ledger.account(userId), accounts.listKeys(userId), store.workers.byOwner(userId),
      ])
      const names = new Map(counterparties.map((u) => [u.id, u.username] as const))
      const linkedProviders = new Set(linked.map((i) => i.provider))
      const v = viewer(request)
      return {
        viewer: { ...v, csrf: v.csrf ?? '' },
        username: user.username,
        createdAt: user.createdAt,
        account,
        keys,
        entries: entries.map((e) => ({ ...e, counterparty: e.counterpartyId === null ? null : names.get(e.counterpartyId) ?? `#${e.counterpartyId}` })),
        nextBefore: entries.length === LEDGER_PAGE ? entries.at(-1)!.postingId : null,
        paged: before !== undefined,
        workers,
        identities: linked,
        linkable: oauth.providers.filter((p) => !linkedProviders.has(p)),
        transfer: extra.transfer ?? { to: '', amount: '', memo: '', idempotencyKey: randomUUID() },
        ...extra,
      }
    }

    app.get<{ Querystring: { before?: string; done?: string; sent?: string; flash?: string } }>('/account', { schema: { hide: true } }, async (request, reply) => {
      const user = pageUser(request, reply)
      if (!user) return reply
      const before = /^\d{1,15}$/.test(request.query.before ?? '') ? Number(request.query.before) : undefined
      const shown = await flash.take<AccountFlash>(user.userId, request.query.flash)
      let notice: AccountPageModel['notice'] = shown?.notice
      const done = request.query.done
      if (done && DONE_MESSAGES[done]) notice = { kind: 'ok', text: DONE_MESSAGES[done] }
      if (/^\d{1,15}$/.test(request.query.sent ?? '')) {
        const sent = await store.transfers.byId(Number(request.query.sent))
        if (sent && sent.senderId === user.userId) {
          notice = { kind: 'ok', text: `Sent ${formatKudos(toKudos(sent.amount))} kudos to ${(await accounts.byId(sent.recipientId))?.username ?? 'them'}.` }
        }
      }
      return sendPage(reply, accountPage(await accountModel(request, user.userId, { before, notice, newKey: shown?.newKey, ...(shown?.transfer ? { transfer: shown.transfer } : {}) })))
    })

    /** Post/redirect/get: what the answer must show goes through the flash; a reload resubmits nothing. */
    async function redirectWith(reply: FastifyReply, userId: number, shown: AccountFlash, anchor: string): Promise<FastifyReply> {
      return reply.redirect(`/account?flash=${await flash.put(userId, shown)}#${anchor}`, 303)
    }

    app.post<{ Body: FormBody }>('/account/keys', { schema: { hide: true } }, async (request, reply) => {
      const user = pageUser(request, reply)
      if (!user) return reply
      const name = field(request.body, 'name')
      const scopes = fields(request.body, 'scopes')
      try {
        const key = await accounts.issueKey(user.userId, name, scopes.includes('all') ? ['all'] : scopes)
        // Shown by the GET this redirects to, once; the page is never cached (no-store).
        return redirectWith(reply, user.userId, { newKey: key }, 'keys')
      } catch (error) {
        if (!isBrokerError(error)) throw error
        return redirectWith(reply, user.userId, { notice: { kind: 'error', text: error.message } }, 'keys')
      }
    })

    app.post<{ Params: { id: string } }>('/account/keys/:id/revoke', { schema: { hide: true } }, async (request, reply) => {
      const user = pageUser(request, reply)
      if (!user) return reply
      const id = /^\d{1,15}$/.test(request.params.id) ? Number(request.params.id) : 0
      if (!(await accounts.revokeKey(user.userId, id))) return redirectWith(reply, user.userId, { notice: { kind: 'error', text: 'No such active key: it was revoked already.' } }, 'keys')
      return reply.redirect('/account?done=revoked#keys', 303)
    })

    app.post<{ Body: FormBody }>('/account/transfer', { schema: { hide: true } }, async (request, reply) => {
      const user = pageUser(request, reply)
      if (!user) return reply
      const form: TransferForm = {
        to: field(request.body, 'to'),
        amount: field(request.body, 'amount'),
        memo: field(request.body, 'memo'),
        idempotencyKey: field(request.body, 'idempotency_key'),
      }
      try {
        // The one transfer operation, with the key the form was rendered with: a double
        // submit or a retried POST moves the kudos once.
        const result = await transfers.transfer({ senderId: user.userId, to: form.to, amount: form.amount, memo: form.memo || null, idempotencyKey: form.idempotencyKey })
        request.log.info({ transfer: result.id, from: result.from.id, to: result.to.id, amount: result.amount, replayed: result.replayed }, 'transfer (web)')
        return reply.redirect(`/account?sent=${result.id}`, 303)
      } catch (error) {
        if (!isBrokerError(error)) throw error
        // Same key kept: nothing was stored under it, and a retry of this very form stays
        // idempotent. Unless the key already moved other kudos: then these fields need a new one.
        const kept = error.code === 'idempotency_conflict' ? { ...form, idempotencyKey: randomUUID() } : form
        return redirectWith(reply, user.userId, { transfer: kept, notice: { kind: 'error', text: error.message } }, 'transfer')
      }
    })

    app.post<{ Params: { provider: string } }>('/account/link/:provider', { schema: { hide: true }, config: { rateLimit: loginLimit(services) } }, async (request, reply) => {
      const user = pageUser(request, reply)
      if (!user) return reply
      return oauth.begin(request, reply, request.params.provider, 'link', '/account')
    })
  })
}
