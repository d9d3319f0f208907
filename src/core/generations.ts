/**
 * The generation API every transport calls (the REST routes, the client socket, and any
 * door added later): submit, view, cancel, attach. Callers are identified by a `Caller`;
 * the core never sees a request object or a socket. Errors are `BrokerError`s, which each
 * transport turns into its own status, frame or close code through the error table.
 */
import type { Principal } from '../accounts/accounts.js'
import { capabilityHash, capabilityMatches, newCapability, newRequestId } from './capabilities.js'
import type { Fanout, ControlBus, EventListener, PositionedEvent, Subscription } from '../cluster/ports.js'
import type { LimitsConfig } from '../config.js'
import type { Metrics } from '../metrics.js'
import { priorityForBalance } from '../economy/priority.js'
import { BrokerError } from '../errors.js'
import { toKudos } from '../economy/amounts.js'
import type { GenerateBody } from '../protocol/client.js'
import type { RequestView } from '../protocol/views.js'
import { classOf, type RequestClass } from '../queue/classes.js'
import type { JobData, JobQueue } from '../queue/job-queue.js'
import type { AcceptOptions, NewRequest, RequestRecord, RequestStore, LedgerStore } from '../store/ports.js'
import type { Dispatcher } from './dispatcher.js'
import { cancelledUnstartedEvent } from './events.js'
import type { JobRunner } from './job-runner.js'
import { chunksBetween, remoteStanding } from './remote-standing.js'

export type RequestState = RequestView['state']
export type { RequestView }
const FINAL = new Set<string>(['done', 'failed', 'cancelled'])

/** Who is asking, as every transport knows it. */
export interface Caller {
  principal: Principal
  /** The client's address (anonymous limits and idempotency keys are scoped by it). */
  address: string
  /** The capability of the request it names (see capabilities.ts), when it gave one. */
  capability?: string
}

export interface SubmitOptions {
  /** A retry with the same key and content returns the first request. */
  idempotencyKey?: string
  /** False: the door's id alone is the key (the AI Horde v2 API), so an anonymous request gets no capability. */
  capability?: boolean
}

/** How a caller may reach a request. */
export interface AccessOptions {
  /**
   * The id alone is enough (the AI Horde v2 API, whose clients poll and cancel by id with no
   * key or another key): request ids are unguessable. Otherwise only the requester may.
   */
  byId?: boolean
}

export interface SubmitResult {
  id: string
  cls: RequestClass
  priority: number
  isPossible: boolean
  position: number | null
  eta: number | null
  /** The key named an earlier request: nothing was queued. */
  replayed: boolean
  /** For an anonymous request: the secret that views, follows and cancels it (shown once). */
  capability?: string
}

/** Where an attach delivers: the view once, then the events that follow it. */
export interface AttachSink {
  /** `resumed`, only for an attach with `after`: true when the chunks after it follow as events. */
  view(view: RequestView, resumed?: boolean): void
  event: EventListener
}

/** The last chunk a watcher holds (its attempt and seq). */
export interface ChunkPlace {
  attempt: number
  seq: number
}

export interface GenerationsDeps {
  requests: RequestStore
  ledger: Pick<LedgerStore, 'account'>
  jobQueue: JobQueue
  dispatcher: Dispatcher
  runner: JobRunner
  fanout: Fanout
  control: ControlBus
  limits: LimitsConfig
  metrics: Pick<Metrics, 'fastDispatches'>
  wallNow(): number
  /** True once the broker drains: nothing new is accepted. */
  closing(): boolean
  /** A moderator suspended this user (as this process last heard). */
  isSuspended(userId: number): boolean
}

export interface Generations {
  submit(caller: Caller, body: GenerateBody, options?: SubmitOptions): Promise<SubmitResult>
  view(caller: Caller, id: string, access?: AccessOptions): Promise<RequestView>
  cancel(caller: Caller, id: string, access?: AccessOptions): Promise<RequestView>
  /**
   * Starts following a request and tells where it stands: `sink.view` first, then every
   * later event, none twice (chunks the view's text already holds are not repeated). No
   * subscription is kept (null) for a request that has ended.
   */
  attach(caller: Caller, id: string, sink: AttachSink, after?: ChunkPlace): Promise<Subscription | null>
  /** Follows a request from its first event (a submitter that just got its id). */
  watch(caller: Caller, id: string, listener: EventListener): Promise<Subscription>
  /** The view with what the position feed and attach need besides it. */
  standing(caller: Caller, id: string, access?: AccessOptions): Promise<Standing>
}

/** Where a request stands: its view, and for a running job of ours the chunks its text holds. */
export interface Standing {
  view: RequestView
  attempt: number
  seq: number
  /** Set while it waits. */
  cls?: RequestClass
}

export function classOfRecord(row: Pick<RequestRecord, 'params'>): RequestClass {
  return classOf(row.params.models, row.params.max_length, row.params.max_context_length, row.params.trusted_workers === true)
}

export function createGenerations(deps: GenerationsDeps): Generations {
  const { requests, jobQueue, dispatcher, runner, fanout, limits } = deps

  async function submit(caller: Caller, body: GenerateBody, options: SubmitOptions = {}): Promise<SubmitResult> {
    const { principal, address } = caller
    if (deps.closing()) throw new BrokerError('unavailable', 'The broker is shutting down')
    if (!principal.scopes.has('generate')) throw new BrokerError('insufficient_scope', 'This API key lacks the generate scope')
    // The principal says what authentication read; a socket opened before a suspension learns of it through the core.
    if (principal.suspended || deps.isSuspended(principal.userId)) throw new BrokerError('user_suspended')
    if (body.prompt.length > limits.maxPromptChars) throw new BrokerError('validation_failed', `prompt is longer than ${limits.maxPromptChars} characters`)
    const maxLength = body.max_length ?? 80
    const maxContextLength = body.max_context_length ?? 1024
    if (maxLength > limits.maxLength) throw new BrokerError('validation_failed', `max_length is larger than ${limits.maxLength}`)
    if (maxContextLength > limits.maxContextLength) throw new BrokerError('validation_failed', `max_context_length is larger than ${limits.maxContextLength}`)
    const models = body.models ?? []
    const trusted = body.trusted_workers === true
    const cls = classOf(models, maxLength, maxContextLength, trusted)
    const now = deps.wallNow()
    // The option is stored only when asked for, so earlier submissions' idempotency fingerprints stay the same.
    const params = trusted
      ? { models, max_length: maxLength, max_context_length: maxContextLength, params: body.params ?? {}, trusted_workers: true }
      : { models, max_length: maxLength, max_context_length: maxContextLength, params: body.params ?? {} }
    const key = options.idempotencyKey
    // Keys of the shared Anonymous account are scoped to the address, so one anonymous
    // client can neither replay nor discover another's request.
    const storedKey = key === undefined ? null : principal.anonymous ? `${address}|${key}` : key

    const id = newRequestId(now)
    const capable = principal.anonymous && options.capability !== false
    const capability = capable ? newCapability(id, storedKey) : undefined
    const record = { id, userId: principal.userId, prompt: body.prompt, params, clientIp: address, createdAt: now, idempotencyKey: storedKey, capabilityHash: capability === undefined ? null : capabilityHash(capability) }
    const cap = { cap: principal.anonymous ? limits.maxActiveAnonymousPerIp : limits.maxActivePerUser, perAddress: principal.anonymous }
    const jobData = (id: string): JobData => ({
      request: id, userId: principal.userId, prompt: body.prompt, models: cls.models,
      max_length: maxLength, max_context_length: maxContextLength, params: body.params ?? {}, submittedAt: now, classKey: cls.key,
    })
    // A retry must find the first request, so a keyed submission always commits first.
    if (key === undefined && dispatcher.hasFree(cls)) return { ...(await submitFast(record, cap, cls, jobData(id))), ...(capability === undefined ? {} : { capability }) }
    if (!(await dispatcher.isPossible(cls))) await checkUnserved(principal.userId, cls)

    // Recorded before it is acknowledged (and before it is queued): the database knows
    // every accepted request. The active-request cap is checked in the same transaction.
    const accepted = await requests.accept(record, cap)
    if (accepted.replayed) {
      // A retry of a submission that was accepted: nothing is queued twice (reconciliation
      // requeues it if it was accepted but never reached Redis). Its capability derives from the key.
      const again = capable ? newCapability(accepted.id, storedKey) : undefined
      const current = await view({ ...caller, capability: again }, accepted.id)
      const answer = { id: accepted.id, cls, priority: 0, isPossible: current.is_possible ?? true, position: current.position ?? null, eta: null, replayed: true }
      return again === undefined ? answer : { ...answer, capability: again }
    }
    const priority = priorityForBalance(accepted.balance)
    const data = jobData(id)
    await jobQueue.ensureClass(cls)
    // One round trip before dispatch: the position is counted alongside the add, not after it.
    const [position, isPossible] = await Promise.all([jobQueue.addWithPosition(cls, data, priority), dispatcher.isPossible(cls)])
    dispatcher.jobAvailable(cls.queue, true)
    const answer = { id, cls, priority, isPossible, position, eta: position === null ? null : dispatcher.eta(position, cls), replayed: false }
    return capability === undefined ? answer : { ...answer, capability }
  }

  /**
   * The dispatch fast path, for a new request that a free worker of ours can serve: the job
   * is queued and claimed for that worker first, and the accept is written after the push,
   * so the worker starts while the store commits (on SQLite, an fsync that holds the
   * process). The caller's answer still waits for the commit. An accept that fails (the
   * active-request cap, the database) withdraws the job: stopped at its worker, paying
   * nothing. A crash before the commit leaves a job with no request; delivery or settlement
   * then finds no row, discards it and bills nothing.
   */
  async function submitFast(record: NewRequest, cap: AcceptOptions, cls: RequestClass, data: JobData): Promise<SubmitResult> {
    const committed = runner.expectCommit(record.id)
    let priority: number
    let position: number
    let claimed: string | null
    try {
      // The accept reads the same balance for the slow path's priority.
      priority = priorityForBalance((await deps.ledger.account(record.userId))?.balance ?? 0)
      await jobQueue.ensureClass(cls)
      ;({ added: position, claimed } = await dispatcher.addAndClaim(cls, () => jobQueue.addWithPosition(cls, data, priority)))
    } catch (error) {
      // Not queued (Redis away) and not recorded: the caller hears it and nothing is left behind.
      committed(false)
      throw error
    }
    try {
      await requests.accept(record, cap)
    } catch (error) {
      committed(false)
      if (!(await jobQueue.removeWaiting(cls.queue, record.id, record.userId))) await runner.cancel(record.id)
      throw error
    }
    committed(true)
    deps.metrics.fastDispatches.inc({ claimed: claimed === record.id ? 'own' : claimed === null ? 'none' : 'other' })
    // Announced (to other processes too) only now that it is recorded: a process that found no row would discard it.
    if (claimed !== record.id) dispatcher.jobAvailable(cls.queue, true)
    return { id: record.id, cls, priority, isPossible: true, position, eta: claimed === record.id ? 0 : dispatcher.eta(position, cls), replayed: false }
  }

  /**
   * Requests for models no worker serves wait (a worker may come), but one account may keep
   * them waiting in only so many classes: each class holds a queue, a registry entry and a
   * stalled-check timer in every process, and made-up model names would make them without end.
   */
  async function checkUnserved(userId: number, cls: RequestClass): Promise<void> {
    const { entries } = await jobQueue.waiting.ofUser(userId)
    const unserved = new Set<string>()
    for (const entry of entries) {
      if (entry.queue === cls.queue || unserved.has(entry.queue)) continue
      const other = jobQueue.classes.get(entry.queue)
      if (other && await dispatcher.isPossible(other)) continue
      unserved.add(entry.queue)
    }
    if (unserved.size >= limits.maxUnservedClassesPerUser) {
      throw new BrokerError('too_many_unserved', `Requests for models no worker serves may wait in at most ${limits.maxUnservedClassesPerUser} request classes per account; cancel one or wait for a worker`)
    }
  }

  /**
   * Ids are unguessable; still, only the requester may watch or cancel (unless the door says
   * the id is the key). A request with a capability (an anonymous one: its account is shared)
   * needs the capability, whatever the door.
   */
  async function loadOwned(caller: Caller, id: string, access: AccessOptions = {}): Promise<RequestRecord> {
    const row = await requests.byId(id)
    const { principal } = caller
    if (row && row.capabilityHash !== null) {
      // Only anonymous requests carry one, so no key but the capability opens them.
      if (capabilityMatches(caller.capability, row.capabilityHash)) return row
      throw new BrokerError('unknown_request', 'No such generation request (an anonymous request also needs its capability: the X-Request-Capability header, or capability on the socket)')
    }
    if (!row || (row.userId !== principal.userId && !access.byId)) throw new BrokerError('unknown_request')
    return row
  }

  async function view(caller: Caller, id: string, access?: AccessOptions): Promise<RequestView> {
    return (await viewWithSeq(caller, id, access)).view
  }

  /** The view, and for a running job of ours the chunks its text holds. */
  async function viewWithSeq(caller: Caller, id: string, access?: AccessOptions): Promise<Standing> {
    const row = await loadOwned(caller, id, access)
    const local = runner.running(id)
    const state: RequestState = row.state === 'waiting' ? (local || jobQueue.isHeld(id) ? 'running' : 'waiting') : (row.state as RequestState)
    const base: RequestView = { id, state, created_at: new Date(row.createdAt).toISOString() }
    if (state === 'waiting') {
      const cls = classOfRecord(row)
      const priority = priorityForBalance((await deps.ledger.account(row.userId))?.balance ?? 0)
      base.position = await jobQueue.position(cls.queue, id, priority)
      if (base.position !== null) {
        base.is_possible = await dispatcher.isPossible(cls)
        return { view: base, attempt: 0, seq: 0, cls }
      }
      // Not in its queue: a worker of another process holds it.
      base.state = 'running'
      delete base.position
      const remote = await remoteStanding(fanout, id)
      if (!remote) return { view: base, attempt: 0, seq: 0 }
      Object.assign(base, { attempt: remote.attempt, worker: remote.worker, model: remote.model, text: remote.text })
      return { view: base, attempt: remote.attempt, seq: remote.seq }
    } else if (state === 'running' && local) {
      base.attempt = local.job.attempt
      base.worker = local.worker.info?.name ?? null
      base.model = local.job.model
      base.text = local.job.parts.join('')
      return { view: base, attempt: local.job.attempt, seq: local.job.seq }
    } else if (FINAL.has(state)) {
      Object.assign(base, {
        worker: row.workerName, model: row.model, text: row.text, tokens: row.tokens, kudos: row.kudos === null ? null : toKudos(row.kudos),
        error: row.error, finished_at: row.finishedAt ? new Date(row.finishedAt).toISOString() : null,
      })
    }
    return { view: base, attempt: 0, seq: 0 }
  }

  async function cancel(caller: Caller, id: string, access?: AccessOptions): Promise<RequestView> {
    const row = await loadOwned(caller, id, access)
    if (FINAL.has(row.state)) throw new BrokerError('not_cancellable')
    const cls = classOfRecord(row)
    if (await jobQueue.removeWaiting(cls.queue, id, row.userId)) {
      if (await requests.end(id, 'cancelled')) await fanout.publish(id, cancelledUnstartedEvent(id))
    } else if (!(await runner.cancel(id))) {
      // Held by a worker of another process: its process stops it.
      await deps.control.publish({ type: 'cancel', request: id })
    }
    return view(caller, id, access)
  }

  async function attach(caller: Caller, id: string, sink: AttachSink, after?: ChunkPlace): Promise<Subscription | null> {
    await loadOwned(caller, id)
    // Subscribe first, then look: events that arrive meanwhile wait in `early` and are
    // handed on after the view, without the chunks the view's text already holds.
    let early: PositionedEvent[] | null = []
    const subscription = await fanout.subscribe(id, (event) => (early ? early.push(event) : sink.event(event)))
    let seen: Awaited<ReturnType<typeof viewWithSeq>>
    let replay: PositionedEvent[] | null = null
    try {
      seen = await viewWithSeq(caller, id)
      if (after && !FINAL.has(seen.view.state)) replay = await chunksBetween(fanout, id, seen.attempt, after.seq, seen.seq)
    } catch (error) {
      subscription.close()
      throw error
    }
    const pending = early
    early = null
    sink.view(seen.view, after ? replay !== null && after.attempt === seen.attempt : undefined)
    if (FINAL.has(seen.view.state)) {
      subscription.close()
      return null
    }
    if (replay && after?.attempt === seen.attempt) for (const event of replay) sink.event(event)
    for (const event of pending) {
      if (event.type === 'chunk' && event.attempt === seen.attempt && (event.seq ?? 0) < seen.seq) continue
      sink.event(event)
    }
    return subscription
  }

  async function watch(caller: Caller, id: string, listener: EventListener): Promise<Subscription> {
    await loadOwned(caller, id)
    return fanout.subscribe(id, listener, 0)
  }

  return { submit, view, cancel, attach, watch, standing: viewWithSeq }
}
