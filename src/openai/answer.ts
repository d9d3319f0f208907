/**
 * Sends an accepted horde request's answer over HTTP, as OpenAI's clients expect it: a
 * server-sent event stream (queue positions as comment lines while it waits, one chunk per
 * relayed piece of text, the finish, the usage when asked, `[DONE]`), or one JSON object
 * once the text is complete (the queue position at acceptance in a response header).
 * Either way, a client that goes away cancels the request, which then pays only for the
 * text delivered so far.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { Caller, SubmitResult } from '../core/generations.js'
import { AnswerFollower, type AnswerEnd, type FollowDeps } from './follow.js'
import type { OpenAiError } from './errors.js'
import type { HordeCall } from './mapping.js'
import { answerShape, usageOf } from './shapes.js'
import { createSseStream, SSE_HEADERS } from './sse.js'

/**
 * Whether the HTTP client is still there, watched from the moment a route starts: a client
 * can leave while its request is being submitted, and a 'close' listener added after that
 * would never hear of it (the event has passed), leaving the request queued for nobody.
 */
export interface ClientWatch {
  /** True once the connection closed before the answer was sent in full. */
  readonly gone: boolean
  /** Calls `left` once when the client goes away, or at once if it already has. */
  onGone(left: () => void): void
}

export function watchClient(raw: ServerResponse): ClientWatch {
  let gone = raw.destroyed
  const waiting: Array<() => void> = []
  if (!gone) {
    raw.once('close', () => {
      // 'close' also follows a response sent in full: that is no client leaving.
      if (raw.writableFinished) return
      gone = true
      for (const left of waiting.splice(0)) left()
    })
  }
  return {
    get gone() {
      return gone
    },
    onGone(left) {
      if (gone) left()
      else waiting.push(left)
    },
  }
}

export interface AnswerContext {
  deps: FollowDeps
  /** The HTTP client, watched since the route started. */
  client: ClientWatch
  caller: Caller
  accepted: SubmitResult
  call: HordeCall
  kind: 'chat' | 'text'
  /** The `model` the caller asked for: named in chunks until a worker's model is known. */
  requested: string
  /** True while the broker shuts down: a connection it closes is not a client leaving. */
  closing(): boolean
}

export function sendError(reply: FastifyReply, error: OpenAiError): FastifyReply {
  if (!error.retry) reply.header('x-should-retry', 'false')
  return reply.status(error.status).type('application/json').send(error.body)
}

function follower(ctx: AnswerContext, sink: ConstructorParameters<typeof AnswerFollower>[2]): AnswerFollower {
  const { call, accepted } = ctx
  return new AnswerFollower(ctx.deps, { caller: ctx.caller, request: accepted.id, maxLength: call.body.max_length, stops: call.stops, replayed: accepted.replayed }, sink)
}

/** Calls `left` when the HTTP client goes away (or went already) before the answer was finished. */
function onClientGone(ctx: AnswerContext, isFinished: () => boolean, left: () => void): void {
  ctx.client.onGone(() => {
    if (!isFinished() && !ctx.closing()) left()
  })
}

export async function sendStream(reply: FastifyReply, ctx: AnswerContext): Promise<FastifyReply> {
  const { call, accepted } = ctx
  const shape = answerShape({ kind: ctx.kind, request: accepted.id, created: Math.floor(Date.now() / 1000), includeUsage: call.includeUsage })
  const sse = createSseStream()
  let model = ctx.requested
  let finished = false
  const answer = follower(ctx, {
    position: (position) => sse.comment(position === null ? 'queue position unknown (the request is queued again)' : `queue position ${position}`),
    started(name) {
      model = name
      const opening = shape.opening(model)
      if (opening) sse.data(opening)
      if (call.echo) sse.data(shape.delta(model, call.echo))
    },
    text: (text) => sse.data(shape.delta(model, text)),
    end(end: AnswerEnd) {
      finished = true
      sse.data(shape.closing(end.model ?? model, end.finish))
      if (call.includeUsage) sse.data(shape.usage(end.model ?? model, usageOf(call.promptTokens, end.tokens)))
      sse.done()
    },
    error(error) {
      finished = true
      sse.data(error.body)
      sse.end()
    },
  })
  if (!accepted.replayed && accepted.position !== null) sse.comment(`queue position ${accepted.position}`)
  try {
    await answer.start()
  } catch (error) {
    sse.end()
    throw error
  }
  onClientGone(ctx, () => finished, () => void answer.abandon())
  return reply.status(200).headers(SSE_HEADERS).send(sse.body)
}

export async function sendWhole(reply: FastifyReply, ctx: AnswerContext): Promise<FastifyReply> {
  const { call, accepted } = ctx
  const shape = answerShape({ kind: ctx.kind, request: accepted.id, created: Math.floor(Date.now() / 1000), includeUsage: false })
  let model = ctx.requested
  let text = call.echo
  let settle!: (outcome: { end: AnswerEnd } | { error: OpenAiError } | null) => void
  const outcome = new Promise<{ end: AnswerEnd } | { error: OpenAiError } | null>((resolve) => (settle = resolve))
  let finished = false
  const answer = follower(ctx, {
    position: () => {},
    started: (name) => { model = name },
    text: (piece) => { text += piece },
    reset: () => { text = call.echo },
    end: (end) => settle({ end }),
    error: (error) => settle({ error }),
  })
  onClientGone(ctx, () => finished, () => {
    void answer.abandon()
    settle(null)
  })
  try {
    await answer.start()
  } catch (error) {
    finished = true
    throw error
  }
  const result = await outcome
  finished = true
  if (result === null) return reply.status(499).send() // nobody is listening any more
  if ('error' in result) return sendError(reply, result.error)
  const { end } = result
  return reply.status(200).send(shape.whole(end.model ?? model, text, end.finish, usageOf(call.promptTokens, end.tokens)))
}
