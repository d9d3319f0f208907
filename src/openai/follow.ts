/**
 * Follows one horde request for an OpenAI answer: the core's events (queued, started,
 * chunk, restarted, done, failed, cancelled) become what an answer needs — a queue
 * position while it waits, the model once a worker took it, the text (cut before the first
 * stop string), then its end or an error. Streaming and non-streaming answers share it.
 *
 * A stop string cuts the answer and cancels the job, so the caller pays only for what was
 * delivered. A job that loses its worker starts again elsewhere, from the beginning: a
 * buffered answer just starts over; a stream that already sent text cannot take it back,
 * so it ends with an error and the request is cancelled (a lost attempt costs nothing).
 */
import type { PositionedEvent, Subscription } from '../cluster/ports.js'
import type { Caller, Generations, RequestView } from '../core/generations.js'
import type { PositionFeed } from '../core/position-feed.js'
import { failureError, openAiError, type OpenAiError } from './errors.js'
import { StopFilter } from './stop-filter.js'

/** How an answer ended. */
export interface AnswerEnd {
  /** `length`: the token limit was reached; `stop`: the model or a stop string ended it. */
  finish: 'stop' | 'length'
  /** Tokens billed, by the broker's count. */
  tokens: number
  /** The model that ran. */
  model: string | null
}

/** Where the answer goes. Nothing is called after `end` or `error`. */
export interface AnswerSink {
  position(position: number | null): void
  /** A worker took the request (once). */
  started(model: string): void
  text(text: string): void
  /** Present when the sink can drop the text it holds (a buffered answer): a restarted job starts over. */
  reset?(): void
  end(end: AnswerEnd): void
  error(error: OpenAiError): void
}

export interface FollowDeps {
  generations: Pick<Generations, 'watch' | 'attach' | 'cancel'>
  positions: Pick<PositionFeed, 'watch'>
}

export interface FollowOptions {
  caller: Caller
  request: string
  /** The request's `max_length` (an answer that used it all ended by `length`). */
  maxLength: number
  stops: readonly string[]
  /** An Idempotency-Key named an earlier request: start from where it stands, not from its first event. */
  replayed: boolean
}

export class AnswerFollower {
  private attempt: number | null = null
  private filter: StopFilter
  private sent = false
  private startedOnce = false
  private over = false
  /** We asked for the cancel (a stop string, a lost worker, the client left). */
  private cancelling = false
  private cutByStop = false
  private subscription: Subscription | null = null

  constructor(private readonly deps: FollowDeps, private readonly options: FollowOptions, private readonly sink: AnswerSink) {
    this.filter = new StopFilter(options.stops)
  }

  /** Subscribes; events start flowing to the sink. */
  async start(): Promise<void> {
    const { caller, request } = this.options
    const listener = (event: PositionedEvent) => this.onEvent(event)
    const subscription = this.options.replayed
      ? await this.deps.generations.attach(caller, request, { view: (view) => this.onView(view), event: listener })
      : await this.deps.generations.watch(caller, request, listener)
    if (!subscription) return
    if (this.over) subscription.close()
    else {
      this.subscription = subscription
      // Queue positions are pushed to watched requests only.
      this.deps.positions.watch(request, caller)
    }
  }

  /** The client went away: stop following and cancel the request (it pays for what was delivered). */
  async abandon(): Promise<void> {
    if (this.over) return
    this.finish()
    await this.cancelRequest()
  }

  private finish(): void {
    this.over = true
    this.subscription?.close()
    this.subscription = null
  }

  private async cancelRequest(): Promise<void> {
    this.cancelling = true
    // Already finished (a race with its end) is fine: the end event follows or has come.
    await this.deps.generations.cancel(this.options.caller, this.options.request).catch(() => {})
  }

  private fail(error: OpenAiError): void {
    this.finish()
    this.sink.error(error)
  }

  private pass(text: string): void {
    if (this.cutByStop || text === '') return
    const out = this.filter.push(text)
    if (out) {
      this.sent = true
      this.sink.text(out)
    }
    if (this.filter.stopped) {
      this.cutByStop = true
      void this.cancelRequest()
    }
  }

  private started(model: string | null | undefined): void {
    if (this.startedOnce || !model) return
    this.startedOnce = true
    this.sink.started(model)
  }

  private ended(tokens: number, model: string | null): void {
    if (!this.cutByStop) {
      const rest = this.filter.flush()
      if (rest) this.sink.text(rest)
    }
    this.finish()
    this.sink.end({ finish: !this.cutByStop && tokens >= this.options.maxLength ? 'length' : 'stop', tokens, model })
  }

  /** A replayed request: where it stands, then the events after that. */
  private onView(view: RequestView): void {
    switch (view.state) {
      case 'waiting':
        this.sink.position(view.position ?? null)
        return
      case 'running':
        if (view.attempt !== undefined) this.attempt = view.attempt
        this.started(view.model)
        if (view.text) this.pass(view.text)
        return
      case 'done':
      case 'cancelled':
        // A replay answers with what the request delivered, whoever ended it.
        this.started(view.model)
        if (view.text) this.pass(view.text)
        this.ended(view.tokens ?? 0, view.model ?? null)
        return
      case 'failed':
        this.fail(failureError('failed', view.error ?? 'The request failed'))
    }
  }

  private onEvent(event: PositionedEvent): void {
    if (this.over) return
    const frame = JSON.parse(event.frame) as Record<string, any>
    switch (event.type) {
      case 'queued':
        if (frame.restarting) this.restarted()
        else this.sink.position(frame.position ?? null)
        return
      case 'restarted':
        return
      case 'started':
        this.attempt = frame.attempt
        this.started(frame.model)
        return
      case 'chunk':
        // The attempt is read from the frame: not every fan-out keeps the event's own fields.
        this.attempt ??= frame.attempt ?? null
        if (frame.attempt === this.attempt) this.pass(frame.text)
        return
      case 'done':
        this.ended(frame.tokens, frame.model ?? null)
        return
      case 'cancelled':
        if (this.cancelling) this.ended(frame.tokens, frame.model ?? null)
        else this.fail(openAiError(409, 'The request was cancelled before it finished.', 'request_cancelled'))
        return
      case 'failed':
        this.fail(failureError(frame.code ?? 'failed', frame.message ?? 'The request failed'))
        return
      default: {
        const never: never = event.type
        throw new Error(`unhandled event ${String(never)}`)
      }
    }
  }

  /** The worker was lost and the job went back to its queue. */
  private restarted(): void {
    if (this.cutByStop) return
    if (!this.sent || this.sink.reset) {
      this.sink.reset?.()
      this.sent = false
      this.filter = new StopFilter(this.options.stops)
      this.sink.position(null)
      return
    }
    this.fail(openAiError(500, 'The worker was lost in the middle of the answer; a new run would not continue the text already sent, so the request was cancelled (a lost run costs nothing). Retry the request.', 'worker_lost'))
    void this.cancelRequest()
  }
}
