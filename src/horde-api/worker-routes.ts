/**
 * The worker side of the v2 API: `POST /generate/text/pop` checks a polling worker in and
 * long-polls for a job; `POST /generate/text/submit` hands its text back and answers the
 * reward. What the answers hold is what AI Horde's bridges read (see docs/horde-api.md):
 * an empty pop still carries every key (`skipped` above all), a job's payload never holds
 * the image keys `width`, `length` or `steps`, and a submit always answers `{reward}`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Principal } from '../accounts/accounts.js'
import { BrokerError } from '../errors.js'
import { canServe } from '../queue/classes.js'
import { bool, fieldsOf, int, text, texts, type Fields } from './body.js'
import type { HordeApiContext } from './context.js'
import { parseUserRef } from './ids.js'
import type { CheckIn, Handed, PollingLink } from './polling-link.js'

/** Image-job keys a text payload must never carry: bridges take a job holding them for an image job. */
const IMAGE_KEYS = new Set(['width', 'height', 'length', 'steps'])

/** Bridges give up on a pop after 40 s; the longest wait allowed stays well inside that. */
const WORKER_NAME = /^[^\u0000-\u001f]{1,100}$/

function requireWorker(principal: Principal): void {
  if (principal.anonymous) throw new BrokerError('login_required', 'Anonymous accounts cannot run workers: register and use your own API key.', { rc: 'AnonForbiddenWorker' })
  if (!principal.scopes.has('work')) throw new BrokerError('insufficient_scope', 'This API key lacks the work scope')
}

async function readCheckIn(fields: Fields, ctx: HordeApiContext): Promise<CheckIn> {
  const name = text(fields, 'name')
  if (name === undefined || !WORKER_NAME.test(name)) throw new BrokerError('validation_failed', 'name must be 1 to 100 characters, without control characters', { rc: 'BadRequest' })
  const models = texts(fields, 'models', { maxItems: 20, maxLength: 200 })
  if (models.length === 0) throw new BrokerError('validation_failed', 'models must name at least one model this worker serves', { rc: 'BadRequest' })
  const priority: string[] = []
  for (const ref of texts(fields, 'priority_usernames', { maxItems: 100, maxLength: 100 })) {
    const parsed = parseUserRef(ref)
    if (!parsed) throw new BrokerError('validation_failed', "Priority usernames need to be provided in the form of 'alias#number'. Example: 'db0#1'", { rc: 'InvalidPriorityUsername' })
    const user = 'id' in parsed ? await ctx.services.accounts.byId(parsed.id) : await ctx.services.accounts.byName(parsed.username)
    // A name no account has stays as given: the check-in reports it as unknown.
    priority.push(user?.username ?? ref)
  }
  return {
    name,
    models: [...new Set(models)],
    maxLength: int(fields, 'max_length', 512, 1, 1_000_000),
    maxContextLength: int(fields, 'max_context_length', 2048, 1, 10_000_000),
    threads: int(fields, 'threads', 1, 1, 50),
    priorityUsernames: priority,
    nsfw: bool(fields, 'nsfw', true),
    bridgeAgent: text(fields, 'bridge_agent', { max: 1000 }) ?? 'unknown:0:unknown',
    softprompts: texts(fields, 'softprompts', { maxItems: 1000, maxLength: 1000 }),
  }
}

/** A pop that found no job: every key AI Horde's answer has, with nulls. */
export function emptyPop(skipped: Record<string, number>) {
  return { id: null, ids: [], skipped, payload: {}, softprompt: null, model: null, ttl: null, messages: [] }
}

/** A pop that got a job: its request's params plus the prompt, `n: 1` and both lengths. */
export function jobPop(handed: Handed, ttlSeconds: number) {
  const { offer } = handed
  const payload: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(offer.params)) if (!IMAGE_KEYS.has(key)) payload[key] = value
  Object.assign(payload, { prompt: offer.prompt, n: 1, max_length: offer.max_length, max_context_length: offer.max_context_length })
  return { payload, id: handed.jobId, ids: [handed.jobId], model: offer.model, ttl: ttlSeconds, softprompt: null, skipped: {}, messages: [] }
}

/** Waiting requests this worker cannot serve, by AI Horde's reasons (one round trip to Redis). */
async function skippedFor(link: PollingLink, ctx: HordeApiContext): Promise<Record<string, number>> {
  const info = link.state.info
  const { jobQueue } = ctx
  const queues = [...jobQueue.classes.keys()]
  if (!info || queues.length === 0) return {}
  const skipped: Record<string, number> = {}
  for (const [queue, n] of await jobQueue.counts(queues)) {
    const cls = jobQueue.classes.get(queue)
    if (n === 0 || !cls || canServe(info, cls)) continue
    const reason = cls.models.length && !cls.models.some((m) => info.models.has(m)) ? 'models'
      : cls.lengthTier > info.maxLength ? 'max_length' : 'max_context_length'
    skipped[reason] = (skipped[reason] ?? 0) + n
  }
  return skipped
}

/** True once the HTTP request holding a pop has gone (the bridge timed out or stopped). */
function goneWatch(reply: FastifyReply): () => boolean {
  let gone = false
  reply.raw.once('close', () => { gone = true })
  return () => gone || reply.raw.destroyed
}

export function registerWorkerRoutes(scope: FastifyInstance, ctx: HordeApiContext): void {
  const { bridges, config } = ctx
  const waitMs = config.hordeApi.popWaitSeconds * 1000
  const ttl = config.hordeApi.jobTtlSeconds

  scope.post('/generate/text/pop', async (request, reply) => {
    requireWorker(request.principal)
    const checkIn = await readCheckIn(fieldsOf(request.body), ctx)
    const link = await bridges.checkIn(request.principal, checkIn)
    const handed = await link.pop(waitMs, goneWatch(reply))
    if (handed) {
      request.log.info({ job: handed.jobId, request: handed.offer.job, worker: checkIn.name, bridge_agent: checkIn.bridgeAgent }, 'v2 pop: job handed')
      return jobPop(handed, ttl)
    }
    return emptyPop(await skippedFor(link, ctx))
  })

  scope.post('/generate/text/submit', async (request) => {
    const fields = fieldsOf(request.body)
    const id = text(fields, 'id', { max: 100 })
    if (!id) throw new BrokerError('validation_failed', 'id is required: the id of the popped job', { rc: 'BadRequest' })
    const generation = text(fields, 'generation') ?? ''
    const state = text(fields, 'state') ?? 'ok'
    if (!['ok', 'censored', 'faulted', 'csam'].includes(state)) throw new BrokerError('validation_failed', 'state must be ok, censored, faulted or csam', { rc: 'BadRequest' })
    const reward = await bridges.submit(request.principal, id, generation, state === 'faulted')
    return { reward }
  })
}
