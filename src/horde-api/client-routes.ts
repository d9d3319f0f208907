/**
 * The client side of the v2 API: `POST /generate/text/async` queues a prompt,
 * `GET /generate/text/status/{id}` reads it, `DELETE` cancels it and answers the same body.
 * Each generation is an ordinary request through `core.generations` (kudos priority, worker
 * preferences, limits, billing and the audit are the native ones); `n` > 1 queues `n` of them
 * under one id (groups.ts). Status is read by the id alone, as AI Horde's clients do: ids are
 * unguessable UUIDs, so these requests get no capability (an anonymous request of another
 * door has one, and is not read here without it).
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Caller, Standing } from '../core/generations.js'
import { generationReward, promptTokens } from '../economy/rewards.js'
import { BrokerError, isBrokerError } from '../errors.js'
import { fieldsOf, int, texts, type Fields } from './body.js'
import type { HordeApiContext } from './context.js'
import { workerUuid } from './ids.js'
import type { GenerateBody } from '../protocol/client.js'

/** Keys of a v2 `params` object that become the request's own limits, not sampler settings. */
const OWN_KEYS = new Set(['n', 'max_length', 'max_context_length'])

/** A sampler value the native request accepts (protocol/client.ts `SamplerParams`). */
function isSamplerValue(value: unknown): boolean {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return true
  if (typeof value === 'string') return value.length <= 1000
  return Array.isArray(value) && value.length <= 64 && value.every((v) => typeof v === 'number' || (typeof v === 'string' && v.length <= 200))
}

/** The sampler settings to pass on; values the native request cannot carry are left out (and named). */
function samplerParams(params: Fields): { kept: NonNullable<GenerateBody['params']>; dropped: string[] } {
  const kept: NonNullable<GenerateBody['params']> = {}
  const dropped: string[] = []
  for (const [key, value] of Object.entries(params)) {
    if (OWN_KEYS.has(key)) continue
    if (key.length <= 64 && Object.keys(kept).length < 64 && isSamplerValue(value)) kept[key] = value as NonNullable<GenerateBody['params']>[string]
    else dropped.push(key)
  }
  return { kept, dropped }
}

const FINAL = new Set(['done', 'failed', 'cancelled'])

export function registerClientRoutes(scope: FastifyInstance, ctx: HordeApiContext): void {
  const { core, config, models, groups, services } = ctx
  const { limits } = config
  const callerOf = (request: FastifyRequest): Caller => ({ principal: request.principal, address: request.ip })
  const perSecond = limits.submitsPerSecond
  const rateLimit = {
    max: Math.max(1, Math.round(perSecond)),
    timeWindow: perSecond >= 1 ? 1000 : Math.round(1000 / perSecond),
    keyGenerator: (request: FastifyRequest) => (request.principal && !request.principal.anonymous ? `user:${request.principal.userId}` : `ip:${request.ip}`),
  }

  /** The requests a v2 id names: a batch's members, or the request itself. */
  async function membersOf(id: string): Promise<string[]> {
    return (await groups.members(id)) ?? [id]
  }

  /** AI Horde's status body, folded over the requests of one v2 id. */
  async function statusOf(request: FastifyRequest, id: string, what: string) {
    const caller = callerOf(request)
    let standings: Standing[]
    try {
      standings = await Promise.all((await membersOf(id)).map((member) => core.generations.standing(caller, member, { byId: true })))
    } catch (error) {
      if (isBrokerError(error) && error.code === 'unknown_request') throw new BrokerError('unknown_request', `${what} with ID '${id}' not found.`)
      throw error
    }
    const views = standings.map((s) => s.view)
    const names = [...new Set(views.map((v) => v.worker).filter((w): w is string => typeof w === 'string'))]
    const rows = names.length ? await services.store.workers.byNames(names) : []
    const idOf = new Map(rows.map((row) => [row.name, workerUuid(row.id)]))
    const waiting = standings.filter((s) => s.view.state === 'waiting')
    const positions = waiting.map((s) => s.view.position ?? 0)
    const generations = views
      .filter((v) => v.state === 'done' || (v.state === 'cancelled' && (v.text ?? '') !== ''))
      .map((v) => ({
        text: v.text ?? '', seed: 0, worker_id: v.worker ? idOf.get(v.worker) ?? null : null, worker_name: v.worker ?? null,
        model: v.model ?? null, id: v.id, state: 'ok', gen_metadata: [],
      }))
    const position = positions.length ? Math.min(...positions) : null
    const first = waiting.find((s) => (s.view.position ?? 0) === position)
    return {
      finished: generations.length,
      processing: views.filter((v) => v.state === 'running').length,
      restarted: views.reduce((sum, v) => sum + Math.max((v.attempt ?? 1) - 1, 0), 0),
      waiting: waiting.length,
      done: views.every((v) => FINAL.has(v.state)),
      faulted: views.some((v) => v.state === 'failed'),
      wait_time: first?.cls && position !== null ? core.dispatcher.eta(position, first.cls) : 0,
      queue_position: position === null ? 0 : position + 1,
      kudos: Math.round(views.reduce((sum, v) => sum + (v.kudos ?? 0), 0)),
      is_possible: waiting.every((s) => s.view.is_possible !== false),
      generations,
    }
  }

  scope.post('/generate/text/async', { config: { rateLimit } }, async (request, reply) => {
    const fields = fieldsOf(request.body)
    const prompt = fields.prompt
    if (typeof prompt !== 'string' || prompt === '') throw new BrokerError('validation_failed', 'You cannot specify an empty prompt.', { rc: 'MissingPrompt' })
    const params = fieldsOf(fields.params, 'params')
    const n = int(params, 'n', 1, 1, 20)
    const maxLength = int(params, 'max_length', 80, 1, limits.maxLength)
    const maxContextLength = int(params, 'max_context_length', 2048, 1, limits.maxContextLength)
    const wanted = texts(fields, 'models', { maxItems: 20, maxLength: 200 })
    const { kept, dropped } = samplerParams(params)
    if (dropped.length) request.log.info({ dropped }, 'v2 submit: params the native request cannot carry were left out')
    // What the worker earns (and the requester pays) if the whole max_length is generated.
    const each = generationReward(maxLength, wanted.length ? models.sizeOf(wanted[0]) : undefined, promptTokens(prompt), config.kudos.generationDivisor)
    const kudos = Math.round(each * n * 100) / 100
    if (fields.dry_run === true) return reply.status(200).send({ kudos })
    const caller = callerOf(request)
    const body = { prompt, models: wanted, max_length: maxLength, max_context_length: maxContextLength, params: kept }
    const accepted: Awaited<ReturnType<typeof core.generations.submit>>[] = []
    try {
      for (let i = 0; i < n; i++) accepted.push(await core.generations.submit(caller, body, { capability: false }))
    } catch (error) {
      // All n or none: the ones already queued are cancelled before the refusal is answered.
      await Promise.all(accepted.map((a) => core.generations.cancel(caller, a.id).catch(() => {})))
      if (isBrokerError(error) && error.code === 'too_many_active') {
        throw new BrokerError('too_many_active', `Too many prompts waiting or running: ${n} more would pass your limit`, { rc: 'TooManyPrompts' })
      }
      throw error
    }
    let id = accepted[0].id
    if (n > 1) {
      id = randomUUID()
      await groups.save(id, accepted.map((a) => a.id))
    }
    request.log.info({ request: id, n, client_agent: request.headers['client-agent'] ?? 'unknown:0:unknown' }, 'v2 submit')
    const answer: Record<string, unknown> = { id, kudos }
    if (!accepted.every((a) => a.isPossible)) {
      answer.message = `Warning: No available workers can fulfill this request. It will expire in ${Math.round(limits.requestTtlSeconds / 60)} minutes unless a worker that can serve it comes online. Consider reducing the amount of tokens to generate.`
    }
    return reply.status(202).send(answer)
  })

  scope.get<{ Params: { id: string } }>('/generate/text/status/:id', async (request) =>
    statusOf(request, request.params.id, 'Text Waiting Prompt (Status)'))

  scope.delete<{ Params: { id: string } }>('/generate/text/status/:id', async (request) => {
    const caller = callerOf(request)
    const members = await membersOf(request.params.id)
    for (const member of members) {
      try {
        await core.generations.cancel(caller, member, { byId: true })
      } catch (error) {
        // Finished ones stay as they are; an unknown id is answered by the status below.
        if (!isBrokerError(error) || (error.code !== 'not_cancellable' && error.code !== 'unknown_request')) throw error
      }
    }
    request.log.info({ request: request.params.id }, 'v2 cancel')
    return statusOf(request, request.params.id, 'Text Waiting Prompt (Delete)')
  })
}
