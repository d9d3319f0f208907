/**
 * The charts' history stays bounded however long the broker runs: hours and days of
 * simulated events fed through an injected clock, then the sizes and sums checked against
 * what was fed. And the chart endpoints of a real broker serve the same bounded shapes.
 */
import t from 'tap'
import { History, HISTORY_SHAPE } from '../src/history/history.js'
import { Rollup } from '../src/history/rollup.js'
import { api, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

const MINUTE = 60_000
const T0 = Date.UTC(2026, 10, 1, 0, 0, 0)

t.test('a rollup keeps its slots, sums what landed in the window, and forgets older laps', async (t) => {
  const sum = new Rollup({ bucketMs: MINUTE, buckets: 60, mode: 'sum' })
  // Ten hours of one event every 10 seconds, each worth its minute number.
  for (let at = T0; at < T0 + 10 * 60 * MINUTE; at += 10_000) sum.record(Math.floor((at - T0) / MINUTE), at)
  const now = T0 + 10 * 60 * MINUTE - 1
  const points = sum.points(now)
  t.equal(points.values.length, 60, 'one value per slot, never more')
  t.equal(points.start, T0 + 9 * 60 * MINUTE, 'the last hour')
  t.equal(points.step_s, 60)
  // Minutes 540..599, six events each.
  let expected = 0
  for (let m = 540; m < 600; m++) expected += 6 * m
  t.equal(sum.total(now), expected, 'the sum of what landed in the last hour, nothing older')
  t.same(sum.points(now + 30 * MINUTE).values.slice(-30), new Array(30).fill(null), 'a quiet half hour shows as empty slots')
  sum.record(5, T0) // ten hours late
  t.equal(sum.total(now), expected, 'a value older than the window is dropped')

  const gauge = new Rollup({ bucketMs: MINUTE, buckets: 10, mode: 'last' })
  gauge.seed(7)
  t.same(gauge.points(T0).values, new Array(10).fill(7), 'a gauge with nothing recorded draws its seed')
  gauge.record(3, T0 + 2 * MINUTE)
  gauge.record(4, T0 + 2 * MINUTE + 10)
  t.same(gauge.points(T0 + 5 * MINUTE).values, [7, 7, 7, 7, 7, 7, 4, 4, 4, 4], 'the last value of a slot, carried forward')
  t.same(gauge.points(T0 + 30 * MINUTE).values, new Array(10).fill(4), 'and carried in from before the window')
  const max = new Rollup({ bucketMs: MINUTE, buckets: 5, mode: 'max' })
  for (const n of [2, 9, 4]) max.record(n, T0)
  t.equal(max.points(T0).values.at(-1), 9)
  t.throws(() => new Rollup({ bucketMs: 0, buckets: 5, mode: 'sum' }))
})

t.test('hours of simulated history: throughput, queues, balances and speeds stay bounded', async (t) => {
  const history = new History({ models: 8, users: 50, workers: 20 })
  let jobs = 0
  let tokens = 0
  let lastHourJobs = 0
  let lastHourTokens = 0
  let lastUser = -1
  const hours = 30
  const end = T0 + hours * 60 * MINUTE
  // A job every 3 seconds for 30 hours, over 40 model names (more than the cap) and 100 workers.
  for (let at = T0, i = 0; at < end; at += 3_000, i++) {
    const n = 10 + (i % 50)
    history.recordJob({ tokens: n, ms: 1000 + (i % 7) * 100, model: `m${i % 40}`, worker: `w${i % 100}` }, at)
    jobs++
    tokens += n
    if (at >= end - 60 * MINUTE) { lastHourJobs++; lastHourTokens += n }
    if (i % 5 === 0) history.sampleQueues({ [`m${i % 40}`]: i % 13, '*': 2 }, at)
    if (i % 10 === 0) {
      lastUser = (i / 10) % 300
      history.seedBalance(lastUser, 0, [{ at, balance: i }])
    }
  }
  const now = end - 1
  const { hour, day } = history.throughput(now)
  t.equal(hour.jobs_per_min.length, HISTORY_SHAPE.hour.buckets)
  t.equal(hour.tokens_per_min.length, HISTORY_SHAPE.hour.buckets)
  t.equal(day.jobs_per_min.length, HISTORY_SHAPE.day.buckets)
  t.equal(hour.jobs_per_min.reduce<number>((a, v) => a + (v ?? 0), 0), lastHourJobs, 'the hour chart sums to the jobs of the last hour')
  t.equal(hour.tokens_per_min.reduce<number>((a, v) => a + (v ?? 0), 0), lastHourTokens, 'and to their tokens')
  t.equal(hour.jobs_per_min.at(-1), 20, 'a job every 3 seconds: 20 a minute')
  const dayJobs = day.jobs_per_min.reduce<number>((a, v) => a + (v ?? 0), 0) * 5
  t.equal(dayJobs, 24 * 60 * 20, 'the day chart holds the last 24 of the 30 hours, as jobs per minute')
  t.ok(jobs > dayJobs, `more was fed (${jobs} jobs, ${tokens} tokens) than any chart keeps`)

  const queues = history.queueLengths(now)
  t.ok(Object.keys(queues.hour.models).length <= 8, 'queue series capped per model')
  for (const values of Object.values(queues.day.models)) t.equal(values.length, HISTORY_SHAPE.day.buckets)
  t.ok(queues.hour.models['*'].every((v) => v === 2), 'the any-model queue sampled all along')
  t.same(history.sizes(), { models: 8, users: 50, workers: 20 }, 'every map stays at its cap')
  const balance = history.balance(lastUser, now)
  t.equal(balance?.values.length, HISTORY_SHAPE.balance.buckets, 'a week of hourly balances')
  t.ok(history.workerSpeed('w99')! > 0, 'a recent worker has a speed')
  t.equal(history.workerSpeed('w0-never'), null)
  t.equal(history.modelTokensLastHour('m39', now) > 0, true)
  t.ok(JSON.stringify({ throughput: history.throughput(now), queues }).length < 60_000, 'what an endpoint serves is small')
})

t.test('the chart endpoints of a real broker serve bounded series', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const history = broker.services.horde.history
  const now = broker.services.horde.now()
  // Six hours of completions fed into the broker's own history, as the job runner reports them.
  for (let at = now - 6 * 60 * MINUTE; at <= now; at += 5_000) history.recordJob({ tokens: 4, ms: 500, model: 'demo/tiny', worker: 'w' }, at)
  history.sampleQueues({ 'demo/tiny': 3 }, now)

  const throughput = await api(url, 'GET', '/v1/status/history')
  t.equal(throughput.status, 200)
  t.equal(throughput.body.hour.jobs_per_min.length, 60)
  t.equal(throughput.body.day.tokens_per_min.length, 288)
  t.equal(throughput.body.hour.jobs_per_min.at(-2), 12, 'a job every 5 seconds')
  const queues = await api(url, 'GET', '/v1/status/models/history')
  t.equal(queues.body.hour.models['demo/tiny'].at(-1), 3)
  t.equal(queues.body.hour.models['demo/tiny'].length, 60)

  const alice = await registerUser(url, 'alice')
  await grant(broker, alice.id, 25)
  const mine = await api(url, 'GET', '/v1/users/me/balance/history', { key: alice.key })
  t.equal(mine.status, 200)
  t.equal(mine.body.values.length, 168)
  t.equal(mine.body.values.at(-1), 25, 'the balance now, in kudos')
  await grant(broker, alice.id, 5)
  const again = await api(url, 'GET', '/v1/users/me/balance/history', { key: alice.key })
  t.equal(again.body.values.at(-1), 30, 'kept up to date by the ledger\'s changes')
  t.equal((await api(url, 'GET', '/v1/users/me/balance/history')).body.error.code, 'login_required', 'only for a user')
})
