/**
 * The two ways `horde-admin` reaches a horde: the database directly (`DbBackend`: safe while
 * the broker runs; the broker reads the audit trail and applies what changed) or the admin
 * REST API with an admin's or moderator's key (`RestBackend`). Both answer with the same
 * views (src/admin/views.ts), so printing does not care which one ran.
 */
import os from 'node:os'
import type { ActingAs } from '../../src/admin/admin.js'
import type { Store } from '../../src/store/ports.js'

/** The answers every backend gives, as the REST routes shape them. */
export interface AdminBackend {
  /** Where it works: a file, a database name, or a URL (for messages). */
  readonly where: string
  showUser(user: string): Promise<any>
  setRole(user: string, role: string, grant: boolean, reason: string): Promise<any>
  setSuspended(user: string, suspended: boolean, reason: string): Promise<any>
  endSessions(user: string, reason: string): Promise<any>
  award(user: string, amount: string, memo: string): Promise<any>
  workers(owner?: string): Promise<{ workers: any[] }>
  setTrusted(worker: string, trusted: boolean, reason: string): Promise<any>
  setPaused(worker: string, paused: boolean, reason: string): Promise<any>
  actions(filter: { user?: string; worker?: string; limit?: number }): Promise<{ actions: any[] }>
  models(): Promise<{ models: Array<{ name: string; size_b: number | null; template: string | null }> }>
  audit(): Promise<any>
  close(): Promise<void>
}

/** A refusal from the broker's rules (REST error body or BrokerError): printed with its code, exit 1. */
export class Refused extends Error {
  constructor(readonly code: string, message: string) { super(message) }
}

/** The admin REST API at `url` with `key`. */
export function restBackend(url: string, key: string): AdminBackend {
  const base = url.replace(/\/+$/, '')
  async function call(method: string, path: string, body?: unknown): Promise<any> {
    let response: Response
    try {
      response = await fetch(`${base}${path}`, {
        method, headers: { apikey: key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (error) {
      throw new Refused('unreachable', `cannot reach ${base}: ${(error as Error).message}`)
    }
    const text = await response.text()
    const parsed = text ? JSON.parse(text) : {}
    if (!response.ok) throw new Refused(parsed?.error?.code ?? `http_${response.status}`, parsed?.error?.message ?? `HTTP ${response.status}`)
    return parsed
  }
  const u = (user: string) => encodeURIComponent(user)
  return {
    where: base,
    showUser: (user) => call('GET', `/v1/admin/users/${u(user)}`),
    setRole: (user, role, grant, reason) => call('POST', `/v1/admin/users/${u(user)}/roles`, { role, grant, reason }),
    setSuspended: (user, suspended, reason) => call('POST', `/v1/admin/users/${u(user)}/suspension`, { suspended, reason }),
    endSessions: (user, reason) => call('POST', `/v1/admin/users/${u(user)}/logout`, { reason }),
    award: (user, amount, memo) => call('POST', `/v1/admin/users/${u(user)}/awards`, { amount, memo }),
    workers: (owner) => call('GET', `/v1/admin/workers${owner ? `?owner=${u(owner)}` : ''}`),
    setTrusted: (worker, trusted, reason) => call('POST', `/v1/admin/workers/${u(worker)}/trust`, { trusted, reason }),
    setPaused: (worker, paused, reason) => call('POST', `/v1/admin/workers/${u(worker)}/pause`, { paused, reason }),
    actions: (filter) => {
      const query = new URLSearchParams()
      for (const [name, value] of Object.entries(filter)) if (value !== undefined) query.set(name, String(value))
      return call('GET', `/v1/admin/actions${query.size ? `?${query}` : ''}`)
    },
    models: () => call('GET', '/v1/admin/models'),
    audit: () => call('GET', '/v1/admin/audit'),
    async close() {},
  }
}

/** The operator on the database: `horde-admin` acts as an admin unless `--as` names the user it acts for. */
export async function dbBackend(store: Store, where: string, options: { as?: string; modelsFile: string; maxKudos: number }): Promise<AdminBackend> {
  const { createAdmin } = await import('../../src/admin/admin.js')
  const views = await import('../../src/admin/views.js')
  const { toKudos } = await import('../../src/economy/amounts.js')
  const { loadModelRegistry } = await import('../../src/economy/models.js')
  const { auditLedger } = await import('../../src/ledger/audit.js')
  const admin = createAdmin(store, { maxKudos: options.maxKudos })
  let as: ActingAs = { actor: { id: null, name: `cli:${os.userInfo().username}` }, roles: ['admin'] }
  if (options.as !== undefined) {
    const user = await admin.user(options.as)
    as = { actor: { id: user.id, name: user.username }, roles: user.roles }
  }
  const wrap = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work()
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (typeof code === 'string' && (error as Error).name === 'BrokerError') throw new Refused(code, (error as Error).message)
      throw error
    }
  }
  const changeView = (user: { id: number; username: string; roles: string[]; suspendedAt: number | null }, action: any) =>
    ({ user: { id: user.id, username: user.username, roles: user.roles, suspended: user.suspendedAt !== null }, changed: action !== null, action: action && views.adminActionView(action) })
  return {
    where,
    showUser: (user) => wrap(async () => views.userReportView(await admin.showUser(user))),
    setRole: (user, role, grant, reason) => wrap(async () => {
      const { value, action } = await admin.setRole(as, user, role, grant, reason)
      return changeView(value, action)
    }),
    setSuspended: (user, suspended, reason) => wrap(async () => {
      const { value, action } = await admin.setSuspended(as, user, suspended, reason)
      return changeView(value, action)
    }),
    endSessions: (user, reason) => wrap(async () => {
      const result = await admin.endSessions(as, user, reason)
      return { user: { id: result.user.id, username: result.user.username }, ended: result.ended, action: views.adminActionView(result.action) }
    }),
    award: (user, amount, memo) => wrap(async () => {
      const result = await admin.award(as, user, amount, memo)
      return { entry_id: result.entryId, to: { id: result.user.id, username: result.user.username }, amount: toKudos(result.amount), memo, action: views.adminActionView(result.action) }
    }),
    workers: (owner) => wrap(async () => ({ workers: (await admin.workers({ owner, limit: 1000 })).map(views.moderatedWorkerView) })),
    setTrusted: (worker, trusted, reason) => wrap(async () => {
      const { value, action } = await admin.setTrusted(as, worker, trusted, reason)
      return { worker: views.moderatedWorkerView(value), changed: action !== null, action: action && views.adminActionView(action) }
    }),
    setPaused: (worker, paused, reason) => wrap(async () => {
      const { value, action } = await admin.setPaused(as, worker, paused, reason)
      return { worker: views.moderatedWorkerView(value), changed: action !== null, action: action && views.adminActionView(action) }
    }),
    actions: (filter) => wrap(async () => ({ actions: (await admin.actions(filter)).map(views.adminActionView) })),
    async models() {
      const models = loadModelRegistry(options.modelsFile)
      return { models: models.names.map((name) => ({ name, size_b: models.sizeOf(name) ?? null, template: models.templateOf(name) ?? null })) }
    },
    audit: () => auditLedger(store.audit),
    close: () => store.close(),
  }
}
