/**
 * The chart data and the cost estimate: each series is read from what the broker keeps
 * (`src/history/`), so an answer has a fixed size however long the broker has run.
 * `/v1/status/history` and `/v1/status/models/history` are public like the status;
 * the balance is the caller's own.
 */
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { toKudos } from '../../economy/amounts.js'
import { promptTokensOfLength } from '../../economy/rewards.js'
import type { Services } from '../../services.js'
import { requireUser } from '../guards.js'

/** Ledger entries read once to start following a user's balance (a week of history, for most). */
const BALANCE_SEED_ENTRIES = 200

const Estimate = Type.Object({
  model: Type.Optional(Type.String({ maxLength: 200 })),
  max_length: Type.Integer({ minimum: 1, maximum: 1_048_576 }),
  prompt_chars: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 })),
}, { additionalProperties: false })

export function registerHistoryRoutes(app: FastifyInstance, services: Services): void {
  const { horde, store } = services

  app.get('/v1/status/history', {
    schema: { summary: 'Jobs and tokens per minute: the last hour by the minute, the last day by 5 minutes (this process)', tags: ['status'] },
  }, async () => horde.history.throughput(horde.now()))

  app.get('/v1/status/models/history', {
    schema: { summary: 'Requests waiting per model over the last hour and day (the most in each slot)', tags: ['status'] },
  }, async () => {
    await horde.queues() // a fresh sample for the newest slot
    return horde.history.queueLengths(horde.now())
  })

  app.get('/v1/users/me/balance/history', {
    config: { auth: 'read' },
    schema: { summary: 'The caller\'s balance by the hour over the last week, in kudos', tags: ['accounts'] },
  }, async (request) => {
    const { userId } = requireUser(request, 'read')
    const now = horde.now()
    if (!horde.history.followsBalance(userId)) {
      // Once per user: the recent ledger, walked back from the balance, starts the series;
      // the ledger's change events keep it from then on.
      const [account, entries] = await Promise.all([store.ledger.account(userId), store.ledger.entries(userId, { limit: BALANCE_SEED_ENTRIES })])
      let balance = account?.balance ?? 0
      const points: Array<{ at: number; balance: number }> = []
      for (const entry of entries) {
        points.push({ at: entry.createdAt, balance })
        balance -= entry.amount
      }
      horde.history.seedBalance(userId, balance, points.reverse())
    }
    const series = horde.history.balance(userId, now)!
    return { start: series.start, step_s: series.step_s, values: series.values.map((v) => (v === null ? null : toKudos(v))) }
  })

  app.get<{ Querystring: Static<typeof Estimate> }>('/v1/estimate', {
    schema: { summary: 'The most kudos a request would cost: for a model, or for the dearest model served now', tags: ['generate'], querystring: Estimate },
  }, async (request) => {
    const { model, max_length: maxLength, prompt_chars: chars = 0 } = request.query
    const kudos = await horde.estimate(model || null, maxLength, promptTokensOfLength(chars))
    return { kudos: Math.round(kudos * 1000) / 1000, max_length: maxLength }
  })
}
