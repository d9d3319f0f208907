/**
 * The horde's public pages: `/models`, `/workers`, `/people` (paged) and `/people/<name>`,
 * `/run-a-worker` and its work-only key form. Registered inside the web context of
 * `web.ts` (form bodies, HTML errors, CSRF), with its helpers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ANONYMOUS_ID } from '../../economy/anonymous.js'
import { BrokerError, isBrokerError } from '../../errors.js'
import type { Services } from '../../services.js'
import { modelRows, workerRows } from '../../web/horde-view.js'
import type { PageViewer } from '../../web/layout.js'
import { modelsPage } from '../../web/pages/models.js'
import { leaderboardPage, PEOPLE_PAGE, profilePage } from '../../web/pages/people.js'
import { runWorkerPage } from '../../web/pages/run-worker.js'
import { workersPage } from '../../web/pages/workers.js'
import type { Flash } from '../flash.js'

export interface WebHelpers {
  viewer(request: FastifyRequest): PageViewer
  sendPage(reply: FastifyReply, page: string, status?: number): FastifyReply
  flash: Flash
  /** This broker's public URL, without a trailing slash. */
  publicUrl(): string
}

/** Highest leaderboard page served (deeper pages are a crawl, not a reader). */
const MAX_PAGE = 10_000

export function registerHordePages(app: FastifyInstance, services: Services, web: WebHelpers): void {
  const { horde, store, accounts } = services

  app.get('/models', { schema: { hide: true } }, async (request, reply) =>
    web.sendPage(reply, modelsPage(web.viewer(request), await modelRows(horde))))

  app.get('/workers', { schema: { hide: true } }, async (request, reply) => {
    const online = await horde.online()
    const stored = online.length ? await store.workers.byNames(online.map((w) => w.name)) : []
    return web.sendPage(reply, workersPage(web.viewer(request), workerRows(horde, online, stored), Date.now()))
  })

  app.get<{ Querystring: { page?: string } }>('/people', { schema: { hide: true } }, async (request, reply) => {
    const asked = /^\d{1,6}$/.test(request.query.page ?? '') ? Number(request.query.page) : 1
    const page = Math.min(Math.max(asked, 1), MAX_PAGE)
    // One row more than a page tells whether a next page exists.
    const rows = await store.ledger.top(PEOPLE_PAGE + 1, (page - 1) * PEOPLE_PAGE)
    return web.sendPage(reply, leaderboardPage(web.viewer(request), { page, rows: rows.slice(0, PEOPLE_PAGE), more: rows.length > PEOPLE_PAGE }))
  })

  app.get<{ Params: { name: string } }>('/people/:name', { schema: { hide: true } }, async (request, reply) => {
    const user = request.params.name.length <= 64 ? await accounts.byName(request.params.name) : undefined
    if (!user || user.id === ANONYMOUS_ID) throw new BrokerError('not_found', `Nobody is called ${request.params.name} here.`)
    const [account, workers, online] = await Promise.all([store.ledger.account(user.id), store.workers.byOwner(user.id), horde.online()])
    return web.sendPage(reply, profilePage(web.viewer(request), {
      username: user.username, createdAt: user.createdAt, roles: user.roles, account, workers,
      online: new Set(online.filter((w) => w.owner === user.username).map((w) => w.name)),
    }))
  })

  app.get<{ Querystring: { key?: string; failed?: string } }>('/run-a-worker', { schema: { hide: true } }, async (request, reply) => {
    const viewer = web.viewer(request)
    const userId = request.session?.userId
    const shown = userId === undefined ? undefined : await web.flash.take<{ key?: { key: string; name: string }; error?: string }>(userId, request.query.key)
    return web.sendPage(reply, runWorkerPage({
      viewer, url: web.publicUrl(), newKey: shown?.key, exampleModel: horde.models.names.find((name) => !name.startsWith('demo/')) ?? 'koboldcpp/LLaMA2-13B-Tiefighter',
      notice: shown?.error ? { kind: 'error', text: shown.error } : undefined,
    }))
  })

  app.post('/run-a-worker/key', { schema: { hide: true } }, async (request, reply) => {
    if (!request.session) return reply.redirect('/login?next=%2Frun-a-worker', 303)
    const userId = request.session.userId
    let shown: object
    try {
      const name = `worker-${new Date().toISOString().slice(0, 16).replace(/[-:T]/g, '')}`
      const key = await accounts.issueKey(userId, name, ['work'])
      shown = { key: { key: key.key, name: key.name } }
    } catch (error) {
      if (!isBrokerError(error)) throw error
      shown = { error: error.message }
    }
    // Post/redirect/get: a reload of the answer shows the page again, it makes no second key.
    return reply.redirect(`/run-a-worker?key=${await web.flash.put(userId, shown)}#key`, 303)
  })
}
