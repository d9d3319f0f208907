/**
 * The life of a job on one of this process's workers: handed over (`deliver`), its chunks
 * relayed to every watcher, then settled exactly once (`finish`: the payment, the request's
 * final row and the worker's counters in one store operation) or lost (`lose`: back to its
 * queue at its priority, or failed after too many attempts, charging nothing).
 *
 * What a job is paid for is bounded by what the broker observed (economy/plausibility.ts):
 * tokens by the time between the push and the `done` on this process's monotonic clock, the
 * context bonus by the request's, the worker's and the model's context limits. Who pays what
 * of it is decided inside the store's write (economy/payment.ts).
 */
import { randomUUID } from 'node:crypto'
import type { ControlBus, Fanout } from '../cluster/ports.js'
import type { Config } from '../config.js'
import type { ModelRegistry } from '../economy/models.js'
import { generationReward, promptTokens } from '../economy/rewards.js'
import { billedTokens, contextTokens } from '../economy/plausibility.js'
import { BrokerError } from '../errors.js'
import { toKudos, toMilli } from '../economy/amounts.js'
import type { Metrics } from '../metrics.js'
import { modelFor, type RequestClass } from '../queue/classes.js'
import type { ClaimedJob, JobQueue } from '../queue/job-queue.js'
import type { RequestStore } from '../store/ports.js'
import { cancelledUnstartedEvent, chunkEvent, failedEvent, queuedEvent, requestEvent } from './events.js'
import { FAIL_STREAK_LIMIT, recordFailure, recordSuccess, rememberFailed } from './fail-streak.js'
import { PendingCommits } from './pending-commits.js'
import type { RunningJob, WorkerState } from './worker-link.js'

const FINAL = new Set<string>(['done', 'failed', 'cancelled'])

export interface JobRunnerDeps {
  requests: RequestStore
  jobQueue: JobQueue
  fanout: Fanout
  control: ControlBus
  models: ModelRegistry
  config: Pick<Config, 'kudos' | 'limits'>
  metrics: Metrics
  wallNow(): number
  /** A worker has a free slot again (dispatch looks for its next job). */
  workerFree(worker: WorkerState): void
  /** Can a worker other than `worker` serve this class? (Then a job `worker` failed waits for it.) */
  othersCanServe(worker: WorkerState, cls: RequestClass): Promise<boolean>
  /** A job ended on a worker: tokens for the throughput figure and the charts, duration for the ETA and the speeds. */
  completed(job: { tokens: number; ms: number; model: string; worker: string }): void
  /** A settlement flagged the worker: it keeps delivering faster than its model plausibly can. */
  flagged(worker: FlaggedWorker): void
  log(error: unknown): void
}

/** A worker just flagged for moderators, as the event tells it (the delivery that tipped it: tokens counted, billed, ms observed). */
export interface FlaggedWorker {
  workerId: number
  name: string
  ownerId: number
  model: string
  counted: number
  billed: number
  elapsedMs: number
  at: number
}

export interface JobRunner {
  /** Hands a claimed job to a worker of ours, unless the request already ended (a replayed job). */
  deliver(worker: WorkerState, claimed: ClaimedJob): Promise<boolean>
  /** A job pushed before its accept committed (see pending-commits.ts): call the result with the accept's outcome. */
  expectCommit(request: string): (recorded: boolean) => void
  /** One chunk from the worker: checked, kept, relayed. Throws a `BrokerError` for a bad one. */
  chunk(worker: WorkerState, job: string, seq: number, text: string): void
  /** The worker says the job is done. Throws for a job it does not hold or a wrong chunk count. */
  done(worker: WorkerState, job: string, chunks: number | undefined): void
  /** The worker gave up on the job. */
  fail(worker: WorkerState, job: string, reason: string | undefined): void
  /** The worker is gone: every job it held goes back to its queue. */
  release(worker: WorkerState, reason: string): void
  /** Stops a job running here (the requester cancelled); false when no worker of ours holds it. */
  cancel(request: string): Promise<boolean>
  running(request: string): { worker: WorkerState; job: RunningJob } | undefined
  /** True while the request's job runs here or its settlement here has not been published yet. */
  busyWith(request: string): boolean
  /** A drain's end: every job still running here is stopped at its worker and goes back to its queue. */
  handBack(reason: string): Promise<void>
  /** Jobs running on this process's workers. */
  readonly size: number
  close(): void
}

export function createJobRunner(deps: JobRunnerDeps): JobRunner {
  const { requests, jobQueue, fanout, models, config, metrics, log } = deps
  /** Running jobs held by this process's workers, by request id. */
  const running = new Map<string, { worker: WorkerState; job: RunningJob }>()
  /** Requests whose settlement is under way here (no longer running, final event not yet published). */
  const settling = new Set<string>()
  const publish = (request: string, event: Parameters<Fanout['publish']>[1]) => void fanout.publish(request, event).catch(log)
  /** Requests cancelled while their job was claimed here but not yet offered (neither waiting nor running): `deliver` ends them. */
  const cancelledBeforeOffer = new Set<string>()
  const commits = new PendingCommits()

  /** Ends a claimed job whose request was cancelled before its worker got it: nothing delivered, nothing charged. */
  async function endUnoffered(claimed: ClaimedJob): Promise<void> {
    const { request } = claimed.job.data
    await jobQueue.complete(claimed).catch(() => {})
    if (await requests.end(request, 'cancelled')) publish(request, cancelledUnstartedEvent(request))
  }

  async function deliver(worker: WorkerState, claimed: ClaimedJob): Promise<boolean> {
    const data = claimed.job.data
    // A request pushed before its accept committed is waiting: reading it would find no row yet.
    const row = commits.has(data.request) ? { state: 'waiting' } : await requests.state(data.request)
    if (cancelledBeforeOffer.delete(data.request)) {
      await endUnoffered(claimed)
      return false
    }
    if (!row || FINAL.has(row.state)) {
      // Settled or cancelled before a crash let the job come back: finish it, do not run it twice.
      await jobQueue.complete(claimed).catch(() => {})
      return false
    }
    if (claimed.job.deferredFailure) {
      // It stalled more often than allowed (its workers' processes kept dying): give up, charge nothing.
      await jobQueue.fail(claimed, claimed.job.deferredFailure).catch(() => {})
      if (await requests.end(data.request, 'failed', { error: claimed.job.deferredFailure })) {
        publish(data.request, failedEvent(data.request, 'attempts_exhausted', 'The request stalled too many times'))
      }
      return false
    }
    const info = worker.info
    if (worker.link.closed || !info) {
      // Claimed for a worker that left meanwhile: nobody started it, so no attempt is counted.
      await jobQueue.giveBack(claimed).catch(log)
      await cancelIfAsked(claimed)
      return false
    }
    if (await failedHereBefore(worker, claimed)) return false
    if (cancelledBeforeOffer.delete(data.request)) {
      await endUnoffered(claimed)
      return false
    }
    const model = modelFor({ models: info.modelList }, { models: data.models })
    const job: RunningJob = {
      id: randomUUID(), claimed, request: data.request, attempt: claimed.attempt, model, seq: 0, parts: [], chars: 0,
      dispatchedAt: performance.now(), firstChunkAt: null,
    }
    worker.jobs.set(job.id, job)
    running.set(data.request, { worker, job })
    metrics.dispatchSeconds.observe((deps.wallNow() - data.submittedAt) / 1000)
    worker.link.offer({
      job: job.id, attempt: claimed.attempt, model, prompt: data.prompt,
      max_length: data.max_length, max_context_length: data.max_context_length, params: data.params,
    })
    if (claimed.attempt > 1) {
      // BullMQ keeps the last attempt's error: the client hears why the request started over.
      const reason = claimed.job.failedReason
      publish(data.request, requestEvent('restarted', reason ? { request: data.request, attempt: claimed.attempt, reason } : { request: data.request, attempt: claimed.attempt }))
    }
    publish(data.request, requestEvent('started', { request: data.request, attempt: claimed.attempt, worker: info.name, model }))
    return true
  }

  /**
   * The job's data says this worker failed it before (maybe in another broker process, or
   * before a restart): while another worker can serve it, it goes back to wait for that one,
   * and the worker's own list learns it, so dispatch passes it by from now on.
   */
  async function failedHereBefore(worker: WorkerState, claimed: ClaimedJob): Promise<boolean> {
    const { request, failedBy } = claimed.job.data
    const cls = jobQueue.classes.get(claimed.queue)
    if (!cls || !failedBy?.includes(worker.info!.id) || worker.avoid.has(request)) return false
    rememberFailed(worker, request)
    if (!(await deps.othersCanServe(worker, cls))) return false
    await jobQueue.giveBack(claimed)
    await cancelIfAsked(claimed)
    return true
  }

  /** A job just put back to wait whose request was cancelled meanwhile (while this process held it): remove it now. */
  async function cancelIfAsked(claimed: ClaimedJob): Promise<void> {
    const { request, userId } = claimed.job.data
    if (!cancelledBeforeOffer.delete(request)) return
    if (await jobQueue.removeWaiting(claimed.queue, request, userId) && await requests.end(request, 'cancelled')) {
      publish(request, cancelledUnstartedEvent(request))
    }
  }

  function held(worker: WorkerState, jobId: string): RunningJob {
    const job = worker.jobs.get(jobId)
    if (!job) throw new BrokerError('not_your_job', `Job ${jobId} is not assigned to this worker`)
    return job
  }

  function chunk(worker: WorkerState, jobId: string, seq: number, text: string): void {
    const job = held(worker, jobId)
    if (seq !== job.seq) throw new BrokerError('bad_sequence', `Expected seq ${job.seq}, got ${seq}`)
    // Billing stops at max_length tokens; what is kept and relayed stops at a fixed cap, so
    // a worker cannot fill the broker's memory, or its clients', with one job.
    if (job.chars + text.length > config.limits.maxJobTextChars) {
      throw new BrokerError('payload_too_large', `A job's text may not pass ${config.limits.maxJobTextChars} characters; send done`)
    }
    job.seq++
    job.parts.push(text)
    job.chars += text.length
    if (job.firstChunkAt === null) {
      job.firstChunkAt = performance.now()
      metrics.firstTokenSeconds.observe((deps.wallNow() - job.claimed.job.data.submittedAt) / 1000)
    }
    metrics.tokensRelayed.inc()
    publish(job.request, chunkEvent(job.request, job.attempt, seq, text))
  }

  function done(worker: WorkerState, jobId: string, chunks: number | undefined): void {
    const job = held(worker, jobId)
    if (chunks !== undefined && chunks !== job.seq) throw new BrokerError('bad_sequence', `done says ${chunks} chunks, ${job.seq} were relayed`)
    void finish(worker, job, 'done').catch(log)
  }

  /** The worker reported a failure: remembered against it (see fail-streak.ts), and the job goes back. */
  function fail(worker: WorkerState, jobId: string, reason: string | undefined): void {
    const job = held(worker, jobId)
    const pause = recordFailure(worker, job.request)
    if (pause > 0) {
      worker.link.paused?.({ seconds: pause, failures: FAIL_STREAK_LIMIT, reason: reason ?? 'no reason given' })
      setTimeout(() => { if (!worker.link.closed) deps.workerFree(worker) }, pause * 1000).unref()
    }
    void lose(worker, job, `failed attempt: ${reason ?? 'no reason given'}`, worker.info!.id).catch(log)
  }

  function detach(worker: WorkerState, job: RunningJob): void {
    worker.jobs.delete(job.id)
    // A stale attempt (its lock was lost and the job went to another worker) leaves the live one in place.
    if (running.get(job.request)?.job === job) running.delete(job.request)
  }

  /** The attempt is lost: the job goes back to its queue at its priority, or fails after too many tries. `failedBy`: the worker reported a failure. */
  async function lose(worker: WorkerState, job: RunningJob, reason: string, failedBy?: number): Promise<void> {
    if (worker.jobs.get(job.id) !== job) return
    detach(worker, job)
    metrics.jobs.inc({ outcome: 'restarted' })
    try {
      if (await jobQueue.restart(job.claimed, reason, { failedBy })) {
        publish(job.request, queuedEvent(job.request, null, true, null, true, reason))
        await cancelIfAsked(job.claimed)
      } else {
        await requests.end(job.request, 'failed', { error: `gave up after ${job.attempt} attempts: ${reason}` })
        publish(job.request, failedEvent(job.request, 'attempts_exhausted', `No worker finished it in ${job.attempt} attempts`))
      }
    } catch (error) {
      // The lock may have expired meanwhile; BullMQ's stalled check returns the job.
      log(error)
    }
    if (!worker.link.closed) deps.workerFree(worker)
  }

  /** Settles a finished (or cancelled) attempt in one store operation, exactly once per request. */
  async function finish(worker: WorkerState, job: RunningJob, outcome: 'done' | 'cancelled'): Promise<void> {
    settling.add(job.request)
    try {
      await settle(worker, job, outcome)
    } finally {
      settling.delete(job.request)
    }
  }

  async function settle(worker: WorkerState, job: RunningJob, outcome: 'done' | 'cancelled'): Promise<void> {
    detach(worker, job)
    if (outcome === 'done') recordSuccess(worker, job.request)
    const elapsedMs = performance.now() - job.dispatchedAt
    const data = job.claimed.job.data
    const text = job.parts.join('')
    const info = worker.info!
    const limits = models.limitsOf(job.model)
    const billed = billedTokens({ chars: job.chars, maxLength: data.max_length, elapsedMs, maxTokensPerSecond: limits.maxTokensPerSecond })
    const tokens = billed.tokens
    const context = contextTokens(promptTokens(data.prompt), { request: data.max_context_length, worker: info.maxContextLength, model: limits.maxContextTokens })
    const reward = tokens > 0 ? toMilli(generationReward(tokens, models.sizeOf(job.model), context, config.kudos.generationDivisor)) : 0
    const ownerId = worker.link.principal.userId
    if (billed.bounded) metrics.boundedDeliveries.inc()
    const finishedAt = Date.now()
    // Pushed before its accept committed: settled once the accept is on disk; an accept that failed pays nothing.
    const recorded = await commits.recorded(job.request)
    const settled = recorded && await requests.settle({
      request: job.request, outcome, text, tokens, reward, worker: { id: info.id, name: info.name, ownerId }, model: job.model, finishedAt,
      preferred: info.preferred.includes(data.userId), creditLines: config.kudos.creditLines, bounded: billed.bounded,
    })
    metrics.jobs.inc({ outcome })
    deps.completed({ tokens, ms: elapsedMs, model: job.model, worker: info.name })
    if (settled) {
      const body = { request: job.request, text, tokens, kudos: toKudos(settled.charged), worker: info.name, model: job.model }
      publish(job.request, requestEvent(outcome, body, true))
      if (!worker.link.closed) worker.link.settled({ job: job.id, outcome, tokens, kudos: toKudos(settled.earned) })
      if (settled.unfunded > 0) metrics.unfundedMilli.inc(settled.unfunded)
      if (settled.flagged) {
        metrics.workersFlagged.inc()
        deps.flagged({ workerId: info.id, name: info.name, ownerId, model: job.model, counted: billed.counted, billed: tokens, elapsedMs: Math.round(elapsedMs), at: finishedAt })
      }
    }
    await jobQueue.complete(job.claimed).catch(() => { /* lock lost: the stalled job comes back, sees a final state, and is completed then */ })
    cancelledBeforeOffer.delete(job.request) // a cancel that came while it was settled: nothing left to cancel
    if (!worker.link.closed) deps.workerFree(worker)
  }

  async function cancel(request: string): Promise<boolean> {
    if (running.has(request) || jobQueue.isHeld(request)) return cancelHere(request)
    // Neither waiting (the caller could not remove it) nor held here: maybe a claim of ours
    // is taking it right now. Once the claims in flight have landed, look again.
    await jobQueue.claimsSettled()
    return running.has(request) || jobQueue.isHeld(request) ? cancelHere(request) : false
  }

  async function cancelHere(request: string): Promise<boolean> {
    const local = running.get(request)
    if (!local) {
      // Claimed here a moment ago and not yet offered: `deliver` ends it instead of offering it.
      cancelledBeforeOffer.add(request)
      return true
    }
    if (local.worker.jobs.get(local.job.id) !== local.job) return true
    local.worker.link.stop(local.job.id)
    await finish(local.worker, local.job, 'cancelled')
    return true
  }

  const offCancel = deps.control.on('cancel', (message) => void cancel(message.request).catch(log))

  return {
    deliver,
    expectCommit: (request) => commits.expect(request),
    chunk,
    done,
    fail,
    release(worker, reason) {
      for (const job of [...worker.jobs.values()]) void lose(worker, job, `worker lost: ${reason}`).catch(log)
    },
    cancel,
    running: (request) => running.get(request),
    busyWith: (request) => running.has(request) || settling.has(request),
    async handBack(reason) {
      const lost: Array<Promise<void>> = []
      for (const { worker, job } of [...running.values()]) {
        if (!worker.link.closed) worker.link.stop(job.id)
        lost.push(lose(worker, job, reason).catch(log))
      }
      await Promise.all(lost)
    },
    get size() {
      return running.size
    },
    close: offCancel,
  }
}
