/**
 * The limit ports' contract: one function per port, taking a factory, run against the memory
 * and the Redis implementation. Through the port the two must not differ (the same rate,
 * burst and waits; the same admissions); what only Redis has (holders that die or stall, keys
 * that expire) is tested after the contracts, against Redis.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { createRedis } from '../src/redis/connect.js'
import { createClusterKeys } from '../src/cluster/keys.js'
import { createMemoryRateLimiter } from '../src/limits/memory-rate-limiter.js'
import { createMemoryConnectionCounter } from '../src/limits/memory-connection-counter.js'
import { createRedisRateLimiter } from '../src/limits/redis-rate-limiter.js'
import { createRedisConnectionCounter, type RedisConnectionCounterOptions } from '../src/limits/redis-connection-counter.js'
import type { ConnectionCounter, RateLimiter } from '../src/limits/ports.js'
import { eventually, sleep, startTestRedis } from './helpers/harness.js'

interface RateLimiterFactory {
  /** A limiter; instances made for one test with the same options share buckets when `shared`. */
  make(t: Test, options: { rate: number; burst: number }): Promise<RateLimiter>
  shared: boolean
}

interface CounterFactory {
  make(t: Test, limit: number): Promise<ConnectionCounter>
  shared: boolean
}

const oks = (decisions: Array<{ ok: boolean }>) => decisions.filter((d) => d.ok).length

// ---------------------------------------------------------------- rate limiter

export function rateLimiterContract(t: Test, factory: RateLimiterFactory): void {
  t.test('a new key has `burst` tokens; the next take waits 1/rate', async (t) => {
    const limiter = await factory.make(t, { rate: 0.01, burst: 3 })
    const key = randomUUID()
    const first = [await limiter.take(key), await limiter.take(key), await limiter.take(key)]
    t.same(first, [{ ok: true, retryAfterMs: 0 }, { ok: true, retryAfterMs: 0 }, { ok: true, retryAfterMs: 0 }], 'burst 3: three at once')
    const refused = await limiter.take(key)
    t.equal(refused.ok, false, 'the fourth is refused')
    // One token every 100 s; the three takes took far less than the 10 s margin.
    t.ok(refused.retryAfterMs > 90_000 && refused.retryAfterMs <= 100_000, `retry after ~100 s (${refused.retryAfterMs} ms)`)
    const again = await limiter.take(key)
    t.equal(again.ok, false, 'a refusal takes nothing and gives nothing')
    t.ok(again.retryAfterMs <= refused.retryAfterMs, 'and the wait only shrinks')
  })

  t.test('tokens come back at the rate, never past the burst', async (t) => {
    const limiter = await factory.make(t, { rate: 4, burst: 2 })
    const key = randomUUID()
    // Sent together: a token is back every 250 ms, and these arrive within a few.
    t.equal(oks(await Promise.all([limiter.take(key), limiter.take(key), limiter.take(key)])), 2, 'two of three at once')
    // On a loaded machine a token may be back already; otherwise the wait is under one interval.
    const refused = await limiter.take(key)
    t.ok(refused.ok ? refused.retryAfterMs === 0 : refused.retryAfterMs > 0 && refused.retryAfterMs <= 250, `waits at most one interval (${refused.retryAfterMs} ms)`)
    await sleep(refused.retryAfterMs + 30)
    t.equal((await limiter.take(key)).ok, true, 'a token is back after the wait it named')
    // Idle for 2 s = 8 tokens at the rate, but the bucket holds 2.
    await sleep(2000)
    t.equal(oks(await Promise.all([limiter.take(key), limiter.take(key), limiter.take(key), limiter.take(key)])), 2, 'an idle bucket refills to its burst only')
  })

  t.test('keys are separate buckets', async (t) => {
    const limiter = await factory.make(t, { rate: 0.01, burst: 1 })
    const [a, b] = [randomUUID(), randomUUID()]
    t.equal((await limiter.take(a)).ok, true)
    t.equal((await limiter.take(a)).ok, false, 'a is empty')
    t.equal((await limiter.take(b)).ok, true, 'b is not')
  })

  t.test('concurrent takes never spend more than the burst', async (t) => {
    const limiter = await factory.make(t, { rate: 0.01, burst: 5 })
    const other = factory.shared ? await factory.make(t, { rate: 0.01, burst: 5 }) : limiter
    const key = randomUUID()
    const takes = Array.from({ length: 20 }, (_, i) => (i % 2 ? other : limiter).take(key))
    t.equal(oks(await Promise.all(takes)), 5, 'exactly five of twenty')
  })

  if (factory.shared) {
    t.test('two instances draw on one bucket', async (t) => {
      const here = await factory.make(t, { rate: 0.01, burst: 2 })
      const there = await factory.make(t, { rate: 0.01, burst: 2 })
      const key = randomUUID()
      t.equal((await here.take(key)).ok, true)
      t.equal((await there.take(key)).ok, true)
      t.equal((await here.take(key)).ok, false, 'the bucket is empty here')
      t.equal((await there.take(key)).ok, false, 'and there')
    })
  }
}

// ---------------------------------------------------------------- connection counter

export function connectionCounterContract(t: Test, factory: CounterFactory): void {
  t.test('slots up to the limit; a release makes room for one', async (t) => {
    const counter = await factory.make(t, 3)
    const key = randomUUID()
    t.equal(counter.limit, 3)
    t.equal(await counter.count(key), 0, 'a new key holds nothing')
    t.same([await counter.acquire(key), await counter.acquire(key), await counter.acquire(key)], [true, true, true])
    t.equal(await counter.acquire(key), false, 'the fourth is refused')
    t.equal(await counter.count(key), 3, 'a refusal takes nothing')
    counter.release(key)
    await eventually(async () => (await counter.count(key)) === 2, 5000, 'the release to count')
    t.equal(await counter.acquire(key), true, 'room for one')
    t.equal(await counter.acquire(key), false, 'and only one')
    for (let i = 0; i < 3; i++) counter.release(key)
    await eventually(async () => (await counter.count(key)) === 0, 5000, 'every release to count')
    t.pass('all released')
  })

  t.test('keys are counted apart', async (t) => {
    const counter = await factory.make(t, 1)
    const [a, b] = [randomUUID(), randomUUID()]
    t.equal(await counter.acquire(a), true)
    t.equal(await counter.acquire(a), false)
    t.equal(await counter.acquire(b), true, 'another key has its own slots')
    t.equal(await counter.count(a), 1)
  })

  t.test('concurrent acquires never pass the limit', async (t) => {
    const counter = await factory.make(t, 5)
    const other = factory.shared ? await factory.make(t, 5) : counter
    const key = randomUUID()
    const acquired = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : counter).acquire(key)))
    t.equal(acquired.filter(Boolean).length, 5, 'exactly five of twenty')
    t.equal(await counter.count(key), 5)
  })

  if (factory.shared) {
    t.test('two instances share the limit', async (t) => {
      const here = await factory.make(t, 3)
      const there = await factory.make(t, 3)
      const key = randomUUID()
      t.equal(await here.acquire(key), true)
      t.equal(await here.acquire(key), true)
      t.equal(await there.acquire(key), true)
      t.equal(await there.acquire(key), false, 'the third slot, taken here, is gone there too')
      t.equal(await here.acquire(key), false)
      t.equal(await there.count(key), 3, 'both see three')
      here.release(key)
      await eventually(async () => (await there.count(key)) === 2, 5000, 'the release to count there')
      t.equal(await there.acquire(key), true, 'a slot given back here is taken there')
    })
  }
}

// ---------------------------------------------------------------- memory

t.test('memory', async (t) => {
  t.test('rate limiter', async (t) => {
    rateLimiterContract(t, { shared: false, make: async (_t, options) => createMemoryRateLimiter(options) })
  })
  t.test('connection counter', async (t) => {
    connectionCounterContract(t, { shared: false, make: async (_t, limit) => createMemoryConnectionCounter(limit) })
  })
})

// ---------------------------------------------------------------- redis

t.test('redis', async (t) => {
  const server = await startTestRedis(t, { appendOnly: false })
  const connect = (t: Test, name: string): Redis => {
    const redis = createRedis(server.url, name)
    t.teardown(() => redis.quit().catch(() => redis.disconnect()))
    return redis
  }
  /** One key prefix per test: instances made for the same test share it, like processes of one cluster. */
  const prefixes = new WeakMap<Test, string>()
  const keysFor = (t: Test) => {
    let prefix = prefixes.get(t)
    if (!prefix) prefixes.set(t, (prefix = `test-${randomUUID()}`))
    return createClusterKeys(prefix)
  }
  const openCounter = (t: Test, limit: number, options: Partial<RedisConnectionCounterOptions> = {}) => {
    const counter = createRedisConnectionCounter({ redis: connect(t, 'counter'), keys: keysFor(t), limit, log: (e) => t.fail(String(e)), ...options })
    t.teardown(() => counter.close())
    return counter
  }

  t.test('rate limiter', async (t) => {
    rateLimiterContract(t, {
      shared: true,
      async make(t, options) {
        return createRedisRateLimiter({ redis: connect(t, 'limiter'), keys: keysFor(t), name: 'test', ...options })
      },
    })
  })

  t.test('connection counter', async (t) => {
    connectionCounterContract(t, { shared: true, make: async (t, limit) => openCounter(t, limit) })
  })

  t.test('rate limiter: a limiter of another name has its own buckets; a full bucket leaves no key', async (t) => {
    const keys = keysFor(t)
    const probe = connect(t, 'probe')
    const redis = connect(t, 'limiter')
    const submits = createRedisRateLimiter({ redis, keys, name: 'submits', rate: 10, burst: 1 })
    const upgrades = createRedisRateLimiter({ redis, keys, name: 'upgrades', rate: 10, burst: 1 })
    t.equal((await submits.take('k')).ok, true)
    t.equal((await upgrades.take('k')).ok, true, 'the same key under another limiter')
    const ttl = await probe.pttl(keys.rate('submits', 'k'))
    t.ok(ttl > 0 && ttl <= 100, `the bucket's key lives until it is full again (${ttl} ms)`)
    await eventually(async () => (await probe.exists(keys.rate('submits', 'k'))) === 0, 5000, 'the key to expire')
    t.equal((await submits.take('k')).ok, true, 'and the bucket is full')
  })

  t.test('connection counter: a holder that stops refreshing stops counting after its TTL', async (t) => {
    const keys = keysFor(t)
    const probe = connect(t, 'probe')
    const live = openCounter(t, 3)
    // Stands for a process killed with its sockets open: its timer never runs again.
    const dying = openCounter(t, 3, { ttlMs: 300, refreshMs: 60_000, holderId: 'dying' })
    const key = randomUUID()
    t.same([await dying.acquire(key), await dying.acquire(key), await live.acquire(key)], [true, true, true])
    t.equal(await live.acquire(key), false, 'the dying holder\'s slots count while it is live')
    await eventually(() => live.acquire(key), 5000, 'its slots to lapse')
    t.equal(await live.count(key), 2, 'only the live holder\'s slots count')
    t.equal(await probe.hexists(keys.connections(key), 'dying'), 0, 'and the lapsed field is deleted')
  })

  t.test('connection counter: a holder that lapsed while alive writes its slots back', async (t) => {
    const other = openCounter(t, 10)
    // Refreshes less often than its TTL: lapses between refreshes, like a stalled process.
    const stalling = openCounter(t, 10, { ttlMs: 150, refreshMs: 700 })
    const key = randomUUID()
    t.equal(await stalling.acquire(key), true)
    t.equal(await stalling.acquire(key), true)
    await eventually(async () => (await other.count(key)) === 0, 5000, 'the stalled holder to lapse (and its field to be dropped)')
    await eventually(async () => (await other.count(key)) === 2, 5000, 'its next refresh to write its two slots back')
    t.pass('restored')
  })

  t.test('connection counter: a closed holder no longer counts', async (t) => {
    const keys = keysFor(t)
    const probe = connect(t, 'probe')
    const a = openCounter(t, 1)
    const b = openCounter(t, 1, { holderId: 'b' })
    const key = randomUUID()
    t.equal(await b.acquire(key), true)
    t.equal(await a.acquire(key), false)
    await b.close()
    t.equal(await probe.zscore(keys.connectionHolders, 'b'), null, 'its liveness is gone at once')
    t.equal(await a.acquire(key), true, 'its slot no longer counts')
  })
})
