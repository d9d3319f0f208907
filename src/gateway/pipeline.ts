/**
 * The job pipeline: requests in (REST or client socket), recorded in SQLite, queued in
 * BullMQ by class and kudos priority, pushed to free workers, their chunks relayed to
 * every watching client, and settled in the ledger exactly once.
 */
import { randomBytes } from 'node:crypto'
import { and, count, eq, lt, sql } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import type { Principal } from '../accounts/accounts.js'
import { ANONYMOUS_ID } from '../db/open.js'
import { requests, users, workers } from '../db/schema.js'
import { countTokens, generationReward, promptTokens } from '../economy/rewards.js'
import type { ModelRegistry } from '../economy/models.js'
import { priorityForBalance } from '../economy/priority.js'
import { BrokerError } from '../errors.js'
import { toKudos, toMilli } from '../ledger/amounts.js'
import { CloseCode } from '../protocol/envelope.js'
import type { GenerateBody } from '../protocol/client.js'
import type { RequestView } from '../protocol/views.js'
import { classOf, canServe, modelFor, type RequestClass } from '../queue/classes.js'
import type { Keys } from '../queue/keys.js'
import type { ClaimedJob, JobData, JobQueue } from '../queue/job-queue.js'
import type { Services } from '../services.js'
import type { Fanout, RequestEvent } from './fanout.js'
import type { RunningJob, WorkerHost, WorkerSession } from './worker-session.js'
import { createDispatcher, type Dispatcher } from './dispatcher.js'
import { UptimeTracker, type UptimeClock } from '../economy/uptime.js'
import { createUptimePayer } from './uptime-payer.js'
import { createReprioritizer } from '../queue/reprioritize.js'
import type { Connection } from './connection.js'
import { KeyedTokenBuckets } from './token-bucket.js'
import { createStatus, Throughput } from './status.js'
import { createGroupCommit } from '../ledger/group-commit.js'

export type RequestState = RequestView['state']
export type { RequestView }
const FINAL = new Set(['done', 'failed', 'cancelled'])


export interface PipelineDeps {
  services: Services
  jobQueue: JobQueue
  fanout: Fanout
  models: ModelRegistry
  keys: Keys
  /** A second Redis connection for pub/sub. */
  subscriber: Redis
  /** The clock uptime is measured on (tests inject one). */
  clock?: UptimeClock
  /** Wall-clock milliseconds for submission times and ageing (tests inject one). */
  wallClock?: () => number
}

/** A sortable, unguessable request id: base-36 time, then 64 random bits. */
export function newRequestId(now = Date.now()): string {
  return now.toString(36).padStart(9, '0') + randomBytes(8).toString('hex')
}

function frame(type: Extract<RequestEvent, { kind: 'client' }>['type'], body: Record<string, unknown>, final = false): RequestEvent {
  return { kind: 'client', type, frame: JSON.stringify({ type, ...body }), final }
}

export function createPipeline(deps: PipelineDeps) {
  const { services, jobQueue, fanout, models, keys } = deps
  const { db, ledger, config, metrics, redis } = services
  const workersByName = new Map<string, WorkerSession>()
  const sessions = new Set<WorkerSession>()
  /** Running jobs held by this process's workers, by request id. */
  const running = new Map<string, { session: WorkerSession; job: RunningJob }>()
  let closing = false

  const selectState = db.select({ state: requests.state, userId: requests.userId }).from(requests).where(eq(requests.id, sql.placeholder('id'))).prepare()
  // Prepared once: position pushes read every watched request each second, settlement reads one per job.
  const selectRequest = db.select().from(requests).where(eq(requests.id, sql.placeholder('id'))).prepare()

  const warn = (error: unknown) => services.log.warn({ err: error }, 'pipeline')
  // Submissions, announces and settlements of one event-loop turn share one commit.
  const commits = createGroupCommit(ledger)
  const wallNow = deps.wallClock ?? Date.now

  // --- the economy in motion: uptime from pongs, priorities from balances ---------------------
  const byConnection = new Map<Connection, WorkerSession>()
  const uptime = new UptimeTracker(config.heartbeatSeconds * 1000, deps.clock)
  const uptimePayer = createUptimePayer(services, models, uptime, () => sessions)
  const onPong = (connection: Connection) => {
    const session = byConnection.get(connection)
    if (session?.info) uptime.pong(session.info.name)
  }
  services.hub.on('pong', onPong)
  const reprioritizer = createReprioritizer({
    redis, keys, jobQueue, ageingBonusPer10s: config.kudos.ageingBonusPer10s, log: warn, now: wallNow,
    balanceOf: (userId) => ledger.account(userId)?.balance ?? 0,
    usersWaiting: () => db.selectDistinct({ userId: requests.userId }).from(requests).where(eq(requests.state, 'waiting')).all().map((r) => r.userId),
  })
  const onBalance = (change: { userId: number }) => reprioritizer.balanceChanged(change.userId)
  const dispatcher: Dispatcher = createDispatcher({
    jobQueue, redis, subscriber: deps.subscriber, keys, sessions, deliver, log: warn,
    // A payment just made must move the payer's other requests before the next pick.
    settled: () => reprioritizer.idle(),
  })
  ledger.events.on('change', onBalance)

  // --- submission -----------------------------------------------------------------------

  /**
   * Accepts a request: recorded, queued, announced to dispatch. `watch` is called with the
   * new id before the job can reach a worker, so a watcher misses none of its events.
   */
  async function submit(principal: Principal, body: GenerateBody, clientIp: string, watch?: (id: string) => void, idempotencyKey?: string): Promise<{ id: string; cls: RequestClass; priority: number; isPossible: boolean; position: number | null; eta: number | null; replayed: boolean }> {
    if (closing) throw new BrokerError('unavailable', 'The broker is shutting down')
    if (!principal.scopes.has('generate')) throw new BrokerError('insufficient_scope', 'This API key lacks the generate scope')
    const { limits } = config
    if (body.prompt.length > limits.maxPromptChars) throw new BrokerError('validation_failed', `prompt is longer than ${limits.maxPromptChars} characters`)
    const maxLength = body.max_length ?? 80
    const maxContextLength = body.max_context_length ?? 1024
    if (maxLength > limits.maxLength) throw new BrokerError('validation_failed', `max_length is larger than ${limits.maxLength}`)
    if (maxContextLength > limits.maxContextLength) throw new BrokerError('validation_failed', `max_context_length is larger than ${limits.maxContextLength}`)
    const modelList = body.models ?? []
    const cls = classOf(modelList, maxLength, maxContextLength)
    const now = wallNow()
    const fresh = newRequestId(now)
    const params = { models: modelList, max_length: maxLength, max_context_length: maxContextLength, params: body.params ?? {} }
    // Keys of the shared Anonymous account are scoped to the address, so one anonymous
    // client can neither replay nor discover another's request.
    const storedKey = idempotencyKey === undefined ? null : principal.anonymous ? `${clientIp}|${idempotencyKey}` : idempotencyKey

    // Recorded before it is acknowledged (and before it is queued): the database knows
    // every accepted request. The active-request limit is checked in the same transaction.
    const { id, balance, replayed } = await commits.run((tx) => {
      if (storedKey !== null) {
        const previous = tx.select({ id: requests.id, prompt: requests.prompt, params: requests.params }).from(requests)
          .where(and(eq(requests.userId, principal.userId), eq(requests.idempotencyKey, storedKey))).get()
        if (previous) {
          if (previous.prompt !== body.prompt || JSON.stringify(previous.params) !== JSON.stringify(params)) throw new BrokerError('idempotency_conflict')
          return { id: previous.id, balance: 0, replayed: true }
        }
      }
      const active = principal.anonymous
        ? tx.select({ n: count() }).from(requests).where(and(eq(requests.userId, ANONYMOUS_ID), eq(requests.state, 'waiting'), eq(requests.clientIp, clientIp))).get()!.n
        : tx.select({ n: count() }).from(requests).where(and(eq(requests.userId, principal.userId), eq(requests.state, 'waiting'))).get()!.n
      const cap = principal.anonymous ? limits.maxActiveAnonymousPerIp : limits.maxActivePerUser
      if (active >= cap) throw new BrokerError('too_many_active', `At most ${cap} requests may wait or run at once${principal.anonymous ? ' per address for anonymous use' : ''}`)
      tx.insert(requests).values({ id: fresh, userId: principal.userId, state: 'waiting', prompt: body.prompt, params, clientIp, createdAt: now, idempotencyKey: storedKey }).run()
      return { id: fresh, balance: ledger.account(principal.userId)?.balance ?? 0, replayed: false }
    })

    watch?.(id)
    if (replayed) {
      // A retry of a submission that was accepted: nothing is queued twice (reconcile
      // requeues it if it was accepted but never reached Redis).
      const current = await view(principal, id)
      return { id, cls, priority: 0, isPossible: current.is_possible ?? true, position: current.position ?? null, eta: null, replayed: true }
    }
    const priority = priorityForBalance(balance)
    const data: JobData = {
      request: id, userId: principal.userId, prompt: body.prompt, models: cls.models,
      max_length: maxLength, max_context_length: maxContextLength, params: body.params ?? {}, submittedAt: now, classKey: cls.key,
    }
    await jobQueue.ensureClass(cls)
    // One round trip before dispatch: the position is counted alongside the add, not after it.
    const [position, , , isPossible] = await Promise.all([
      jobQueue.addWithPosition(cls, data, priority),
      redis.zadd(keys.waiting(principal.userId), now, `${cls.queue}|${id}`),
      redis.set(keys.bucket(principal.userId), String(priority)),
      dispatcher.isPossible(cls),
    ])
    dispatcher.jobAvailable(cls.queue, true)
    return { id, cls, priority, isPossible, position, eta: position === null ? null : dispatcher.eta(position, cls), replayed: false }
  }

  const throughput = new Throughput()
  const status = createStatus(services, jobQueue, () => dispatcher.onlineWorkers(), throughput)
  const submitBuckets = new KeyedTokenBuckets<string>({ rate: config.limits.submitsPerSecond, burst: Math.max(1, Math.ceil(config.limits.submitsPerSecond)) })
  /** Socket submissions per second, per user (per address for anonymous use). */
  function submitAllowed(principal: Principal, address: string): boolean {
    return submitBuckets.take(principal.anonymous ? `ip:${address}` : `user:${principal.userId}`).ok
  }

  // --- queue positions, pushed to watchers -------------------------------------------------

  /** Waiting requests some socket here watches, with the position last told. */
  const positionWatch = new Map<string, { principal: Principal; last: number | null }>()

  function watchPosition(id: string, principal: Principal): void {
    if (!positionWatch.has(id)) positionWatch.set(id, { principal, last: null })
  }

  async function pushPositions(): Promise<void> {
    for (const [id, watch] of positionWatch) {
      if (fanout.listeners(id) === 0) {
        positionWatch.delete(id)
        continue
      }
      const current = await view(watch.principal, id).catch(() => undefined)
      if (!current || current.state !== 'waiting') {
        positionWatch.delete(id)
        continue
      }
      if (current.position !== watch.last) {
        watch.last = current.position ?? null
        const cls = classOfRow(current)
        fanout.publish(id, frame('queued', { request: id, position: current.position, is_possible: current.is_possible, eta_seconds: current.position == null || !cls ? null : dispatcher.eta(current.position, cls) }))
      }
    }
  }
  const positionTimer = setInterval(() => void pushPositions().catch(() => {}), 1000)
  positionTimer.unref()

  function classOfRow(current: RequestView): RequestClass | undefined {
    const row = db.select({ params: requests.params }).from(requests).where(eq(requests.id, current.id)).get()
    return row ? classOf(row.params.models as string[], row.params.max_length as number, row.params.max_context_length as number) : undefined
  }

  // --- dispatch ---------------------------------------------------------------------------

  /** Hands a claimed job to a worker of ours, unless the request already ended (a replayed job). */
  async function deliver(session: WorkerSession, claimed: ClaimedJob): Promise<boolean> {
    const data = claimed.job.data
    const row = selectState.get({ id: data.request })
    void redis.zrem(keys.waiting(data.userId), `${claimed.queue}|${data.request}`).catch(warn)
    if (!row || FINAL.has(row.state)) {
      // Settled or cancelled before a crash let the job come back: finish it, do not run it twice.
      await jobQueue.complete(claimed).catch(() => {})
      return false
    }
    if (claimed.job.deferredFailure) {
      // It stalled more often than allowed (its workers' processes kept dying): give up, charge nothing.
      await jobQueue.fail(claimed, claimed.job.deferredFailure).catch(() => {})
      if (endRequest(data.request, 'failed', { error: claimed.job.deferredFailure })) {
        fanout.publish(data.request, frame('failed', { request: data.request, code: 'attempts_exhausted', message: 'The request stalled too many times' }, true))
      }
      return false
    }
    if (session.connection.closed || !session.info) {
      await jobQueue.restart(claimed, 'worker left before the job was sent').catch(() => {})
      return false
    }
    const info = session.info
    const model = modelFor({ models: info.modelList }, { models: data.models })
    const job: RunningJob = {
      claimed, request: data.request, attempt: claimed.attempt, model, seq: 0, parts: [], chars: 0,
      dispatchedAt: performance.now(), firstChunkAt: null,
      unsubscribe: fanout.subscribe(data.request, (event) => {
        if (event.kind === 'control' && event.type === 'cancel') void cancelRunning(session, job).catch(warn)
      }),
    }
    session.jobs.set(data.request, job)
    running.set(data.request, { session, job })
    metrics.dispatchSeconds.observe((wallNow() - data.submittedAt) / 1000)
    session.connection.send({
      type: 'job', job: data.request, attempt: claimed.attempt, model, prompt: data.prompt,
      max_length: data.max_length, max_context_length: data.max_context_length, params: data.params,
    })
    if (claimed.attempt > 1) fanout.publish(data.request, frame('restarted', { request: data.request, attempt: claimed.attempt }))
    fanout.publish(data.request, frame('started', { request: data.request, attempt: claimed.attempt, worker: info.name, model }))
    return true
  }

  // --- the worker side ----------------------------------------------------------------------

  const host: WorkerHost = {
    async announce(session, message) {
      const principal = session.principal
      const name = message.name
      let workerId: number
      try {
        workerId = await commits.run((tx) => {
          const existing = tx.select().from(workers).where(eq(workers.name, name)).get()
          if (existing && existing.ownerId !== principal.userId) throw new BrokerError('worker_name_taken')
          if (existing) {
            tx.update(workers).set({ lastSeenAt: Date.now() }).where(eq(workers.id, existing.id)).run()
            return existing.id
          }
          return tx.insert(workers).values({ name, ownerId: principal.userId, createdAt: Date.now(), lastSeenAt: Date.now() }).returning({ id: workers.id }).get().id
        })
      } catch (error) {
        if (error instanceof BrokerError) {
          session.connection.error(error.code, error.message, message.id, { bad: false })
          session.connection.close(CloseCode.Forbidden, error.message)
          return
        }
        throw error
      }
      const unknown: string[] = []
      const preferred = [principal.userId]
      for (const username of message.priority_usernames ?? []) {
        const user = db.select({ id: users.id }).from(users).where(eq(users.usernameKey, username.toLowerCase())).get()
        if (user) { if (!preferred.includes(user.id)) preferred.push(user.id) } else unknown.push(username)
      }
      const previous = workersByName.get(name)
      if (previous && previous !== session) {
        previous.connection.close(CloseCode.Replaced, 'replaced by a newer session with the same name')
        releaseWorker(previous, 'worker replaced by a new session')
      }
      if (session.connection.closed) return
      session.info = {
        id: workerId, name, modelList: message.models, models: new Set(message.models),
        maxLength: message.max_length, maxContextLength: message.max_context_length,
        threads: message.threads ?? 1, preferred,
      }
      workersByName.set(name, session)
      byConnection.set(session.connection, session)
      sessions.add(session)
      metrics.workersConnected.set(sessions.size)
      await dispatcher.workerJoined(session)
      session.connection.send({ type: 'ready', id: message.id, worker_id: workerId, name, unknown_priority_users: unknown })
      dispatcher.workerFree(session)
    },

    chunk(session, message) {
      const job = session.jobs.get(message.job)
      if (!job) return session.connection.error('not_your_job', `Job ${message.job} is not assigned to this worker`)
      if (message.seq !== job.seq) return session.connection.error('bad_sequence', `Expected seq ${job.seq}, got ${message.seq}`)
      // Billing stops at max_length tokens; what is kept and relayed stops at a fixed cap, so
      // a worker cannot fill the broker's memory, or its clients', with one job.
      if (job.chars + message.text.length > config.limits.maxJobTextChars) {
        return session.connection.error('payload_too_large', `A job's text may not pass ${config.limits.maxJobTextChars} characters; send done`)
      }
      job.seq++
      job.parts.push(message.text)
      job.chars += message.text.length
      if (job.firstChunkAt === null) {
        job.firstChunkAt = performance.now()
        metrics.firstTokenSeconds.observe((wallNow() - job.claimed.job.data.submittedAt) / 1000)
      }
      metrics.tokensRelayed.inc()
      fanout.publish(job.request, {
        kind: 'client', type: 'chunk', final: false,
        frame: `{"type":"chunk","request":"${job.request}","attempt":${job.attempt},"seq":${message.seq},"text":${JSON.stringify(message.text)}}`,
      })
    },

    done(session, message) {
      const job = session.jobs.get(message.job)
      if (!job) return session.connection.error('not_your_job', `Job ${message.job} is not assigned to this worker`)
      if (message.chunks !== undefined && message.chunks !== job.seq) {
        return session.connection.error('bad_sequence', `done says ${message.chunks} chunks, ${job.seq} were relayed`)
      }
      void finish(session, job, 'done').catch(warn)
    },

    fail(session, message) {
      const job = session.jobs.get(message.job)
      if (!job) return session.connection.error('not_your_job', `Job ${message.job} is not assigned to this worker`)
      void lose(session, job, `worker failed: ${message.reason ?? 'no reason given'}`).catch(warn)
    },

    closed(session) {
      releaseWorker(session, 'worker disconnected')
    },
  }

  function releaseWorker(session: WorkerSession, reason: string): void {
    byConnection.delete(session.connection)
    if (session.info) {
      try {
        uptimePayer.flush([session])
      } catch (error) {
        warn(error)
      }
      // A replaced session's name lives on in its successor: keep that timeline.
      if (workersByName.get(session.info.name) === session) {
        workersByName.delete(session.info.name)
        uptime.forget(session.info.name)
      }
    }
    if (sessions.delete(session)) {
      metrics.workersConnected.set(sessions.size)
      dispatcher.workerLeft(session)
    }
    for (const job of [...session.jobs.values()]) void lose(session, job, reason).catch(warn)
  }

  function detach(session: WorkerSession, job: RunningJob): void {
    session.jobs.delete(job.request)
    // A stale attempt (its lock was lost and the job went to another worker) leaves the live one in place.
    if (running.get(job.request)?.job === job) running.delete(job.request)
    job.unsubscribe()
  }

  /** The attempt is lost: the job goes back to its queue at its priority, or fails after too many tries. */
  async function lose(session: WorkerSession, job: RunningJob, reason: string): Promise<void> {
    if (!session.jobs.has(job.request)) return
    detach(session, job)
    metrics.jobs.inc({ outcome: 'restarted' })
    const data = job.claimed.job.data
    try {
      const requeued = await jobQueue.restart(job.claimed, reason)
      if (requeued) {
        await redis.zadd(keys.waiting(data.userId), data.submittedAt, `${job.claimed.queue}|${job.request}`)
        fanout.publish(job.request, frame('queued', { request: job.request, position: null, is_possible: true, eta_seconds: null, restarting: true }))
      } else {
        endRequest(job.request, 'failed', { error: `gave up after ${job.attempt} attempts: ${reason}` })
        fanout.publish(job.request, frame('failed', { request: job.request, code: 'attempts_exhausted', message: `No worker finished it in ${job.attempt} attempts` }, true))
      }
    } catch (error) {
      // The lock may have expired meanwhile; BullMQ's stalled check returns the job.
      warn(error)
    }
    if (!session.connection.closed) dispatcher.workerFree(session)
  }

  /** Settles a finished (or cancelled) attempt in one ledger transaction, exactly once per request. */
  async function finish(session: WorkerSession, job: RunningJob, outcome: 'done' | 'cancelled'): Promise<void> {
    detach(session, job)
    const data = job.claimed.job.data
    const text = job.parts.join('')
    const delivered = job.chars > 0
    const tokens = outcome === 'done' || delivered ? countTokens(text, data.max_length) : 0
    const amount = tokens > 0 ? toMilli(generationReward(tokens, models.sizeOf(job.model), promptTokens(data.prompt), config.kudos.generationDivisor)) : 0
    const info = session.info!
    const ownerId = session.principal.userId
    const settled = await commits.run((tx, post) => {
      const row = selectState.get({ id: job.request })
      if (!row || FINAL.has(row.state)) return false
      if (amount > 0) {
        post({
          kind: 'generation', ref: job.request, actorId: ownerId,
          postings: [
            { userId: data.userId, amount: -amount, category: 'spent', counterpartyId: ownerId },
            { userId: ownerId, amount, category: 'generation', counterpartyId: data.userId },
          ],
        })
      }
      tx.update(requests).set({ state: outcome, text, tokens, kudos: amount, workerId: info.id, workerName: info.name, model: job.model, finishedAt: Date.now() })
        .where(eq(requests.id, job.request)).run()
      tx.update(workers).set({ jobs: sql`${workers.jobs} + 1`, tokens: sql`${workers.tokens} + ${tokens}`, earned: sql`${workers.earned} + ${amount}` })
        .where(eq(workers.id, info.id)).run()
      return true
    })
    metrics.jobs.inc({ outcome })
    throughput.record(tokens)
    dispatcher.recordCompletion(performance.now() - job.dispatchedAt)
    if (settled) {
      const body = { request: job.request, text, tokens, kudos: toKudos(amount), worker: info.name, model: job.model }
      fanout.publish(job.request, outcome === 'done' ? frame('done', body, true) : frame('cancelled', body, true))
      if (!session.connection.closed) session.connection.send({ type: 'settled', job: job.request, outcome, tokens, kudos: toKudos(amount) })
    }
    await jobQueue.complete(job.claimed).catch(() => { /* lock lost: the stalled job comes back, sees a final state, and is completed then */ })
    if (!session.connection.closed) dispatcher.workerFree(session)
  }

  async function cancelRunning(session: WorkerSession, job: RunningJob): Promise<void> {
    if (!session.jobs.has(job.request)) return
    session.connection.send({ type: 'cancel', job: job.request })
    await finish(session, job, 'cancelled')
  }

  /** Marks a request as ended without a worker (cancelled or expired while waiting, failed). */
  function endRequest(id: string, state: 'failed' | 'cancelled', fields: { error?: string } = {}): boolean {
    const result = db.update(requests).set({ state, finishedAt: Date.now(), error: fields.error ?? null, tokens: 0, kudos: 0 })
      .where(and(eq(requests.id, id), eq(requests.state, 'waiting'))).run()
    return result.changes > 0
  }

  // --- client side -----------------------------------------------------------------------------

  function loadOwned(principal: Principal, id: string) {
    const row = selectRequest.get({ id })
    // Ids are unguessable; still, only the requester may watch or cancel.
    if (!row || row.userId !== principal.userId) throw new BrokerError('unknown_request')
    return row
  }

  async function cancel(principal: Principal, id: string): Promise<RequestView> {
    const row = loadOwned(principal, id)
    if (FINAL.has(row.state)) throw new BrokerError('not_cancellable')
    const cls = classOf(row.params.models as string[], row.params.max_length as number, row.params.max_context_length as number)
    if (await jobQueue.removeWaiting(cls.queue, id)) {
      void redis.zrem(keys.waiting(row.userId), `${cls.queue}|${id}`).catch(warn)
      if (endRequest(id, 'cancelled')) fanout.publish(id, frame('cancelled', { request: id, text: '', tokens: 0, kudos: 0 }, true))
    } else {
      const local = running.get(id)
      if (local) await cancelRunning(local.session, local.job)
      else fanout.publish(id, { kind: 'control', type: 'cancel' })
    }
    return view(principal, id)
  }

  async function view(principal: Principal, id: string): Promise<RequestView> {
    const row = loadOwned(principal, id)
    const local = running.get(id)
    const state: RequestState = row.state === 'waiting' ? (local || jobQueue.isHeld(id) ? 'running' : 'waiting') : (row.state as RequestState)
    const base: RequestView = { id, state, created_at: new Date(row.createdAt).toISOString() }
    if (state === 'waiting') {
      const cls = classOf(row.params.models as string[], row.params.max_length as number, row.params.max_context_length as number)
      const priority = priorityForBalance(ledger.account(row.userId)?.balance ?? 0)
      base.position = await jobQueue.position(cls.queue, id, priority)
      if (base.position === null) base.state = 'running'
      base.is_possible = await dispatcher.isPossible(cls)
    } else if (state === 'running' && local) {
      base.attempt = local.job.attempt
      base.worker = local.session.info?.name ?? null
      base.model = local.job.model
      base.text = local.job.parts.join('')
    } else if (FINAL.has(state)) {
      Object.assign(base, {
        worker: row.workerName, model: row.model, text: row.text, tokens: row.tokens, kudos: row.kudos === null ? null : toKudos(row.kudos),
        error: row.error, finished_at: row.finishedAt ? new Date(row.finishedAt).toISOString() : null,
      })
    }
    return base
  }

  // --- reconciliation: the database knows every accepted request -------------------------

  /**
   * Queues again every accepted, unfinished request that Redis lost (Redis restarted without
   * its last writes, or flushed), at its current priority. A request is queued under its id,
   * so one that is still there is never queued twice; one running on a worker of ours is
   * left alone.
   */
  async function reconcile(): Promise<number> {
    let requeued = 0
    let after = ''
    const touched = new Set<string>()
    for (;;) {
      const rows = db.select().from(requests)
        .where(and(eq(requests.state, 'waiting'), sql`${requests.id} > ${after}`)).orderBy(requests.id).limit(1000).all()
      if (rows.length === 0) break
      after = rows[rows.length - 1].id
      const candidates = rows.filter((row) => !running.has(row.id)).map((row) => ({
        row, cls: classOf(row.params.models as string[], row.params.max_length as number, row.params.max_context_length as number),
      }))
      const present = await jobQueue.exists(candidates.map((c) => ({ queue: c.cls.queue, request: c.row.id })))
      for (let i = 0; i < candidates.length; i++) {
        const { row, cls } = candidates[i]
        // Open the class even when Redis still holds the job: after a flush the registry may
        // not name it, and a queue this process never opened is neither served nor checked for stalls.
        if (await jobQueue.ensureClass(cls)) touched.add(cls.queue)
        if (present[i]) continue
        const priority = priorityForBalance(ledger.account(row.userId)?.balance ?? 0)
        await Promise.all([
          jobQueue.add(cls, {
            request: row.id, userId: row.userId, prompt: row.prompt, models: cls.models,
            max_length: row.params.max_length as number, max_context_length: row.params.max_context_length as number,
            params: (row.params.params as Record<string, unknown>) ?? {}, submittedAt: row.createdAt, classKey: cls.key,
          }, priority),
          redis.zadd(keys.waiting(row.userId), row.createdAt, `${cls.queue}|${row.id}`),
        ])
        touched.add(cls.queue)
        requeued++
      }
    }
    await jobQueue.registerClasses()
    for (const queue of touched) dispatcher.jobAvailable(queue, true)
    if (requeued > 0) services.log.warn({ requeued }, 'requests missing from Redis were queued again')
    return requeued
  }
  let reconciling: Promise<number> | undefined
  function reconcileSoon(): Promise<number> {
    reconciling ??= reconcile().finally(() => { reconciling = undefined })
    return reconciling
  }
  const reconcileTimer = setInterval(() => void reconcileSoon().catch(warn), config.reconcileSeconds * 1000)
  reconcileTimer.unref()
  // After Redis comes back (restarted, perhaps without its last writes), look at once.
  let redisWasDown = false
  const onRedisClose = () => { redisWasDown = true }
  const onRedisReady = () => {
    if (!redisWasDown) return
    redisWasDown = false
    void reconcileSoon().catch(warn)
  }
  redis.on('close', onRedisClose)
  redis.on('ready', onRedisReady)

  // --- expiry ------------------------------------------------------------------------------------

  async function expireOld(now = Date.now()): Promise<number> {
    const cutoff = now - config.limits.requestTtlSeconds * 1000
    const old = db.select({ id: requests.id, userId: requests.userId, params: requests.params }).from(requests)
      .where(and(eq(requests.state, 'waiting'), lt(requests.createdAt, cutoff))).limit(500).all()
    let expired = 0
    for (const row of old) {
      const cls = classOf(row.params.models as string[], row.params.max_length as number, row.params.max_context_length as number)
      if (!(await jobQueue.removeWaiting(cls.queue, row.id))) continue
      void redis.zrem(keys.waiting(row.userId), `${cls.queue}|${row.id}`).catch(warn)
      if (endRequest(row.id, 'failed', { error: 'expired' })) {
        expired++
        fanout.publish(row.id, frame('failed', { request: row.id, code: 'expired', message: `No worker took the request within ${config.limits.requestTtlSeconds} s` }, true))
      }
    }
    return expired
  }
  const expiryTimer = setInterval(() => void expireOld().catch(() => {}), Math.min(5000, config.limits.requestTtlSeconds * 250))
  expiryTimer.unref()

  return {
    submit,
    reconcile: reconcileSoon,
    status,
    submitAllowed,
    watchPosition,
    pushPositions,
    cancel,
    view,
    expireOld,
    host,
    dispatcher,
    reprioritizer,
    uptime,
    uptimePayer,
    sessions,
    running,
    fanout,
    jobQueue,
    /** Called when the broker starts draining: no new work. */
    stopAccepting() {
      closing = true
      clearInterval(expiryTimer)
      clearInterval(positionTimer)
    },
    async close() {
      closing = true
      clearInterval(expiryTimer)
      clearInterval(positionTimer)
      clearInterval(reconcileTimer)
      redis.off('close', onRedisClose)
      redis.off('ready', onRedisReady)
      services.hub.off('pong', onPong)
      ledger.events.off('change', onBalance)
      uptimePayer.close()
      reprioritizer.close()
      await reprioritizer.idle()
      await dispatcher.close()
    },
  }
}

export type Pipeline = ReturnType<typeof createPipeline>
