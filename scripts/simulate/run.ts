/**
 * Runs one scenario under one policy against a real broker: a private redis-server, a temp data
 * directory, real WebSocket workers and clients. Returns what the broker *recorded* (request rows
 * and ledger postings read back through the store ports), never the simulator's own intentions.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { createBroker } from '../../src/broker.js'
import { loadConfig } from '../../src/config.js'
import { startRedisServer } from '../../src/redis/redis-server.js'
import { toMilli } from '../../src/economy/amounts.js'
import { ANONYMOUS_ID, UNFUNDED_ID } from '../../src/economy/anonymous.js'
import { MAX_WATCHED } from '../../src/gateway/client-session.js'
import type { EntryView, RequestRecord } from '../../src/store/ports.js'
import type { Policy, Scenario } from './scenario.js'

/** What one policy's run left in the broker's store. */
export interface RunRecord {
  policy: string
  /** Epoch ms when arrivals began; every time in the report is relative to it. */
  startedAt: number
  /** Epoch ms when the figures were read. */
  endedAt: number
  /** Requester class of each user id. */
  classOf: Record<number, string>
  /** Worker owners' user ids. */
  owners: number[]
  /** The request rows, read back by id. */
  requests: RequestRecord[]
  /** Every posting of every user in the run (and of the system account `horde:unfunded`), set-up awards included. */
  postings: Array<EntryView & { userId: number }>
  /** Submissions the broker refused (too many active, too fast...), by class. */
  refused: Record<string, number>
  /** The same by error code, so a report can say which limit refused them. */
  refusedCodes: Record<string, Record<string, number>>
  /** The audit's verdict at the end. */
  audit: { ok: boolean; problems: string[] }
}

/** A deterministic generator (mulberry32) so every policy sees the same arrivals. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Opens a socket with its message handler already attached: the welcome may come with the upgrade. */
function open(url: string, key: string | undefined, onFrame: (ws: WebSocket, frame: any) => void): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: key ? { apikey: key } : {} })
  ws.on('message', (data) => onFrame(ws, JSON.parse(String(data))))
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade to ${url} refused: ${res.statusCode}`)))
    ws.once('error', reject)
  })
}

async function post(base: string, route: string, body: unknown): Promise<any> {
  const response = await fetch(base + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const answer = await response.json()
  if (response.status >= 300) throw new Error(`POST ${route}: ${response.status} ${JSON.stringify(answer)}`)
  return answer
}

/** Progress reported once a second. */
export interface Progress { policy: string; elapsed: number; duration: number; submitted: number; finished: number }

export async function runPolicy(scenario: Scenario, policy: Policy, onProgress: (p: Progress) => void = () => {}): Promise<RunRecord> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'horde-sim-'))
  const redis = await startRedisServer({ dir: path.join(dataDir, 'redis'), appendOnly: false })
  const sockets: WebSocket[] = []
  const timers = new Set<NodeJS.Timeout>()
  try {
    const config = loadConfig({
      PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, REDIS_URL: redis.url, LOG_LEVEL: 'silent',
      REGISTRATIONS_PER_MINUTE: '1000000', LOGINS_PER_MINUTE: '1000000', HTTP_CONNECTIONS_PER_IP: '1000000', SUBMITS_PER_SECOND: '1000', MAX_ACTIVE_ANON_PER_IP: '100000',
      MAX_ACTIVE_PER_USER: '100000', CONNECTIONS_PER_IP: '100000', UPGRADES_PER_SECOND: '100000', SQLITE_SYNCHRONOUS: 'NORMAL',
      ...scenario.env, ...policy.env,
    })
    const broker = await createBroker(config)
    try {
      const base = await broker.listen()
      const wsBase = base.replace(/^http/, 'ws')
      const { ledger } = broker.services
      const classOf: Record<number, string> = {}
      const keys = new Map<string, { id: number; key?: string }>()
      const sink = await post(base, '/v1/users', { username: 'sim-sink' })
      // Balances are set through the ledger: an award up; a balanced transfer-kind entry down (debt).
      for (const cls of scenario.requesters) {
        const users = cls.anonymous ? [{ id: ANONYMOUS_ID, apikey: undefined as string | undefined, username: 'Anonymous' }] : []
        for (let i = 1; !cls.anonymous && i <= cls.users; i++) users.push({ ...(await post(base, '/v1/users', { username: `${cls.name}-${i}` })), username: `${cls.name}-${i}` })
        for (const user of users) {
          classOf[user.id] = cls.name
          keys.set(user.username, { id: user.id, key: user.apikey })
          const amount = toMilli(cls.balance)
          if (amount > 0) await ledger.award({ userId: user.id, amount, memo: 'simulation set-up' })
          if (amount < 0) await ledger.post({ kind: 'transfer', ref: `sim-debt-${user.id}`, memo: 'simulation set-up', postings: [
            { userId: user.id, amount, category: 'sent', counterpartyId: sink.id },
            { userId: sink.id, amount: -amount, category: 'received', counterpartyId: user.id },
          ] })
        }
      }
      const owners: number[] = []
      for (const spec of scenario.workers) {
        let owner = keys.get(spec.owner)
        if (!owner) {
          const made = await post(base, '/v1/users', { username: spec.owner })
          owner = { id: made.id, key: made.apikey }
          keys.set(spec.owner, owner)
        }
        if (!owner.key) throw new Error(`worker ${spec.name}: the Anonymous account cannot own a worker`)
        if (!owners.includes(owner.id)) owners.push(owner.id)
        classOf[owner.id] ??= 'worker-owner'
        let resolveReady!: () => void
        let rejectReady!: (error: Error) => void
        const ready = new Promise<void>((resolve, reject) => { resolveReady = resolve; rejectReady = reject })
        const ws = await open(`${wsBase}/v1/worker`, owner.key, (ws, frame) => {
          if (frame.type === 'welcome') ws.send(JSON.stringify({ type: 'announce', name: spec.name, models: [spec.model], max_length: 4096, max_context_length: spec.maxContextLength, threads: spec.threads }))
          else if (frame.type === 'ready') resolveReady()
          else if (frame.type === 'error' && !frame.job) rejectReady(new Error(`worker ${spec.name}: ${frame.code} ${frame.message}`))
          else if (frame.type === 'job') {
            // The worker delivers exactly what was asked, at its speed: one chunk, then done.
            const timer = setTimeout(() => {
              timers.delete(timer)
              if (ws.readyState !== WebSocket.OPEN) return
              ws.send(JSON.stringify({ type: 'chunk', job: frame.job, seq: 0, text: 'x'.repeat(frame.max_length * 4) }))
              ws.send(JSON.stringify({ type: 'done', job: frame.job, chunks: 1 }))
            }, (frame.max_length / spec.tokensPerSecond) * 1000)
            timers.add(timer)
          }
        })
        sockets.push(ws)
        await ready
      }
      // Arrivals: one Poisson process per class, drawn from the seed, users picked at random.
      const random = rng(scenario.seed)
      const arrivals: Array<{ at: number; userId: number; cls: (typeof scenario.requesters)[number] }> = []
      for (const cls of scenario.requesters) {
        if (cls.ratePerSecond <= 0) continue
        const users = Object.entries(classOf).filter(([, c]) => c === cls.name).map(([id]) => Number(id))
        for (let at = 0; ; ) {
          at += -Math.log(1 - random()) / cls.ratePerSecond
          if (at >= scenario.durationSeconds) break
          arrivals.push({ at, userId: users[Math.floor(random() * users.length)], cls })
        }
      }
      arrivals.sort((a, b) => a.at - b.at)
      // Client sockets: a socket watches at most MAX_WATCHED requests (a broker limit, not the
      // load's), so each user gets one socket per MAX_WATCHED of its arrivals, used in turn.
      const requestIds: string[] = []
      const refused: Record<string, number> = {}
      const refusedCodes: Record<string, Record<string, number>> = {}
      const clients = new Map<number, WebSocket[]>()
      const arrivalsOf = new Map<number, number>()
      for (const arrival of arrivals) arrivalsOf.set(arrival.userId, (arrivalsOf.get(arrival.userId) ?? 0) + 1)
      for (const cls of scenario.requesters) {
        for (const user of keys.values()) {
          if (classOf[user.id] !== cls.name || clients.has(user.id)) continue
          const pool: WebSocket[] = []
          for (let i = 0; i < Math.max(1, Math.ceil((arrivalsOf.get(user.id) ?? 0) / MAX_WATCHED)); i++) {
            const ws = await open(`${wsBase}/v1/client`, cls.anonymous ? undefined : user.key, (_ws, frame) => {
              if (frame.type === 'accepted') requestIds.push(frame.request)
              if (frame.type === 'error' && typeof frame.id === 'string' && frame.id.startsWith('sub-')) {
                refused[cls.name] = (refused[cls.name] ?? 0) + 1
                const codes = (refusedCodes[cls.name] ??= {})
                codes[frame.code] = (codes[frame.code] ?? 0) + 1
              }
            })
            sockets.push(ws)
            pool.push(ws)
          }
          clients.set(user.id, pool)
        }
      }
      const startedAt = Date.now()
      let sent = 0
      const progress = setInterval(async () => {
        const finished = requestIds.length - (await broker.services.store.requests.count({ state: 'waiting' }))
        onProgress({ policy: policy.name, elapsed: (Date.now() - startedAt) / 1000, duration: scenario.durationSeconds + scenario.drainSeconds, submitted: sent, finished })
      }, 1000)
      try {
        for (const arrival of arrivals) {
          const wait = startedAt + arrival.at * 1000 - Date.now()
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
          const prompt = 'p'.repeat(arrival.cls.promptChars)
          const pool = clients.get(arrival.userId)!
          const turn = arrivalsOf.get(arrival.userId)! - 1
          arrivalsOf.set(arrival.userId, turn)
          pool[turn % pool.length].send(JSON.stringify({ type: 'submit', id: `sub-${++sent}`, prompt, max_length: arrival.cls.maxLength, max_context_length: 4096 }))
        }
        const drainUntil = startedAt + (scenario.durationSeconds + scenario.drainSeconds) * 1000
        while (Date.now() < drainUntil) {
          if (requestIds.length + Object.values(refused).reduce((a, b) => a + b, 0) >= sent && (await broker.services.store.requests.count({ state: 'waiting' })) === 0) break
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      } finally {
        clearInterval(progress)
      }
      const endedAt = Date.now()
      const { store } = broker.services
      const requests = (await Promise.all(requestIds.map((id) => store.requests.byId(id)))).filter((r): r is RequestRecord => r !== undefined)
      const postings: RunRecord['postings'] = []
      for (const id of [...Object.keys(classOf).map(Number), UNFUNDED_ID]) {
        for (let before: number | undefined; ;) {
          const page = await store.ledger.entries(id, { before, limit: 500 })
          for (const entry of page) postings.push({ ...entry, userId: id })
          if (page.length < 500) break
          before = page[page.length - 1].postingId
        }
      }
      const report = await store.audit.run()
      // Debt cannot be reached through a transfer (it moves only a positive balance), so the
      // set-up posts balanced transfer-kind entries without a transfers row; the audit names
      // exactly those, and only those are set aside.
      const problems = report.problems.filter((problem) => !/\(transfer, ref sim-debt-\d+\) has no transfers row$/.test(problem))
      return { policy: policy.name, startedAt, endedAt, classOf, owners, requests, postings, refused, refusedCodes, audit: { ok: problems.length === 0, problems } }
    } finally {
      for (const timer of timers) clearTimeout(timer)
      for (const ws of sockets) ws.terminate()
      await broker.close()
    }
  } finally {
    await redis.kill()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
