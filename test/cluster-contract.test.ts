/**
 * The cluster ports' contract: one function per port, taking a factory, run against every
 * implementation. Memory and Redis implementations must be indistinguishable through the
 * port; what only one backend has (the registry's read cache, a liveness key's expiry) is
 * tested after the contracts, against that backend.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { createRedis } from '../src/redis/connect.js'
import { createClusterKeys } from '../src/cluster/keys.js'
import { createMemoryFanout } from '../src/cluster/memory-fanout.js'
import { createMemoryControlBus } from '../src/cluster/memory-control-bus.js'
import { createMemoryRegistry, createMemoryRegistrySpace } from '../src/cluster/memory-registry.js'
import { createRedisRegistry, type RedisRegistryOptions } from '../src/cluster/redis-registry.js'
import { createRedisFanout } from '../src/cluster/redis-fanout.js'
import { createRedisControlBus } from '../src/cluster/redis-control-bus.js'
import { createRedisFeed } from '../src/cluster/redis-feed.js'
import { chunkEvent } from '../src/core/events.js'
import type { ControlBus, Fanout, OnlineWorker, PositionedEvent, RequestEvent, WorkerRegistry } from '../src/cluster/ports.js'
import { eventually, sleep, startTestRedis } from './helpers/harness.js'

// ---------------------------------------------------------------- helpers

interface FanoutOptions {
  historySize?: number
  forgetMs?: number
  log?: (error: unknown) => void
}

interface FanoutFactory {
  /** A fan-out instance; closed by the factory at the test's end. */
  make(t: Test, options?: FanoutOptions): Promise<Fanout>
  /** Instances made for one test share a backend (what a second process would see). */
  shared: boolean
}

const chunk = (text: string, final = false): RequestEvent => ({ type: final ? 'done' : 'chunk', frame: JSON.stringify({ text }), final })

/** A listener that records what it is given. */
function recorder() {
  const got: PositionedEvent[] = []
  return { got, listener: (event: PositionedEvent) => void got.push(event), positions: () => got.map((e) => e.position) }
}

function range(from: number, to: number): number[] {
  const list: number[] = []
  for (let i = from; i <= to; i++) list.push(i)
  return list
}

const waitFor = (what: string, check: () => boolean) => eventually(check, 5000, what)

// ---------------------------------------------------------------- fan-out

export function fanoutContract(t: Test, factory: FanoutFactory): void {
  t.test('events arrive in order with increasing positions', async (t) => {
    const fanout = await factory.make(t)
    const request = randomUUID()
    const a = recorder()
    const sub = await fanout.subscribe(request, a.listener)
    t.equal(sub.recovered, true, 'a live-only subscription misses nothing')
    t.equal(fanout.listeners(request), 1)
    const positions: number[] = []
    for (let i = 0; i < 20; i++) positions.push(await fanout.publish(request, chunk(`t${i}`, i === 19)))
    t.same(positions, range(1, 20), 'publish returns 1, 2, 3...')
    await waitFor('20 events', () => a.got.length === 20)
    t.same(a.positions(), range(1, 20))
    t.same(a.got.map((e) => JSON.parse(e.frame).text), range(0, 19).map((i) => `t${i}`), 'frames as published')
    t.same(a.got.map((e) => e.final), [...Array(19).fill(false), true], 'only the last is final')
    t.equal(a.got[19].type, 'done')
    sub.close()
    t.equal(fanout.listeners(request), 0)
  })

  t.test('a chunk event keeps its attempt and seq, live and from the history', async (t) => {
    const fanout = await factory.make(t)
    const request = randomUUID()
    const a = recorder()
    const sub = await fanout.subscribe(request, a.listener)
    await fanout.publish(request, chunkEvent(request, 2, 0, 'x'))
    await fanout.publish(request, chunkEvent(request, 2, 1, 'y'))
    await waitFor('two events', () => a.got.length === 2)
    t.same(a.got.map((e) => [e.attempt, e.seq]), [[2, 0], [2, 1]], 'live')
    t.same((await fanout.history(request)).map((e) => [e.attempt, e.seq]), [[2, 0], [2, 1]], 'from the history')
    sub.close()
  })

  t.test('requests are separate streams', async (t) => {
    const fanout = await factory.make(t)
    const [r1, r2] = [randomUUID(), randomUUID()]
    const a = recorder()
    const sub = await fanout.subscribe(r1, a.listener)
    t.equal(await fanout.publish(r2, chunk('other')), 1, 'each request counts from 1')
    t.equal(await fanout.publish(r1, chunk('mine')), 1)
    await waitFor('one event', () => a.got.length === 1)
    await sleep(30)
    t.same(a.got.map((e) => JSON.parse(e.frame).text), ['mine'])
    sub.close()
  })

  t.test('catch-up from since, then live, with no gap and no duplicate', async (t) => {
    const fanout = await factory.make(t)
    const request = randomUUID()
    for (let i = 1; i <= 5; i++) await fanout.publish(request, chunk(`t${i}`))
    t.same((await fanout.history(request)).map((e) => e.position), range(1, 5), 'history keeps everything')
    t.same((await fanout.history(request, 3)).map((e) => e.position), [4, 5], 'history after a position')
    const from2 = recorder()
    const from0 = recorder()
    const subA = await fanout.subscribe(request, from2.listener, 2)
    const subB = await fanout.subscribe(request, from0.listener, 0)
    t.equal(subA.recovered, true)
    t.equal(subB.recovered, true)
    t.same(from2.positions(), [3, 4, 5], 'catch-up is delivered before subscribe resolves')
    t.same(from0.positions(), range(1, 5))
    await fanout.publish(request, chunk('t6'))
    await fanout.publish(request, chunk('t7', true))
    await waitFor('live events', () => from2.got.length === 5 && from0.got.length === 7)
    t.same(from2.positions(), range(3, 7))
    t.same(from0.positions(), range(1, 7))
    const upToDate = recorder()
    const subC = await fanout.subscribe(request, upToDate.listener, 7)
    t.equal(subC.recovered, true, 'since = the last position misses nothing')
    t.same(upToDate.got, [])
    for (const sub of [subA, subB, subC]) sub.close()
  })

  t.test('a publish racing the catch-up is delivered once, in order', async (t) => {
    const fanout = await factory.make(t)
    // On a shared backend the racing publisher is another instance: its own connection, truly concurrent.
    const publisher = factory.shared ? await factory.make(t) : fanout
    for (let round = 0; round < 20; round++) {
      const request = randomUUID()
      const since = round % 10
      for (let i = 1; i <= 10; i++) await publisher.publish(request, chunk(`t${i}`))
      const a = recorder()
      // Events keep coming, one round trip apart, while the subscription is set up and caught up.
      const racing = (async () => {
        for (let i = 11; i <= 40; i++) await publisher.publish(request, chunk(`t${i}`))
      })()
      await new Promise((resolve) => setImmediate(resolve))
      const sub = await fanout.subscribe(request, a.listener, since)
      await racing
      await waitFor('all events', () => a.got.length >= 40 - since)
      await sleep(5)
      t.same(a.positions(), range(since + 1, 40), `round ${round}`)
      sub.close()
    }
  })

  t.test('a listener that publishes during its catch-up still sees everything in order', async (t) => {
    const fanout = await factory.make(t)
    const request = randomUUID()
    for (let i = 1; i <= 3; i++) await fanout.publish(request, chunk(`t${i}`))
    const got: number[] = []
    const other = recorder()
    const subOther = await fanout.subscribe(request, other.listener, 0)
    const sub = await fanout.subscribe(request, (event) => {
      got.push(event.position)
      // Each catch-up event triggers a new event, published from inside the delivery.
      if (event.position <= 3) void fanout.publish(request, chunk(`echo${event.position}`))
    }, 0)
    await waitFor('6 events', () => got.length === 6 && other.got.length === 6)
    await sleep(20)
    t.same(got, range(1, 6))
    t.same(other.positions(), range(1, 6), 'other subscribers keep the order too')
    sub.close()
    subOther.close()
  })

  t.test('a live listener that publishes does not reorder the others', async (t) => {
    const fanout = await factory.make(t)
    const request = randomUUID()
    const first: number[] = []
    const subFirst = await fanout.subscribe(request, (event) => {
      first.push(event.position)
      if (event.position < 5) void fanout.publish(request, chunk(`echo${event.position}`))
    })
    const second = recorder()
    const subSecond = await fanout.subscribe(request, second.listener)
    await fanout.publish(request, chunk('start'))
    await waitFor('5 events each', () => first.length === 5 && second.got.length === 5)
    await sleep(20)
    t.same(first, range(1, 5))
    t.same(second.positions(), range(1, 5), 'the second listener still sees 1 before 2')
    subFirst.close()
    subSecond.close()
  })

  t.test('history is bounded, and a resume past the bound says it missed events', async (t) => {
    const fanout = await factory.make(t, { historySize: 5 })
    const request = randomUUID()
    for (let i = 1; i <= 12; i++) await fanout.publish(request, chunk(`t${i}`))
    t.same((await fanout.history(request)).map((e) => e.position), range(8, 12), 'only the last 5 kept')
    const behind = recorder()
    const subBehind = await fanout.subscribe(request, behind.listener, 2)
    t.equal(subBehind.recovered, false, 'events 3..7 are gone')
    t.same(behind.positions(), range(8, 12), 'what is kept is still delivered')
    const edge = recorder()
    const subEdge = await fanout.subscribe(request, edge.listener, 7)
    t.equal(subEdge.recovered, true, 'resuming right at the bound misses nothing')
    t.same(edge.positions(), range(8, 12))
    const ahead = recorder()
    const subAhead = await fanout.subscribe(request, ahead.listener, 50)
    t.equal(subAhead.recovered, false, 'a position this stream never reached is not recovered')
    t.same(ahead.got, [])
    for (const sub of [subBehind, subEdge, subAhead]) sub.close()
  })

  t.test('a stream is forgotten a while after its final event', async (t) => {
    const fanout = await factory.make(t, { forgetMs: 150 })
    const request = randomUUID()
    const open = randomUUID()
    await fanout.publish(request, chunk('a'))
    await fanout.publish(request, chunk('b', true))
    await fanout.publish(open, chunk('still going'))
    t.equal((await fanout.history(request)).length, 2, 'kept right after the end')
    await eventually(async () => (await fanout.history(request)).length === 0, 5000, 'stream forgotten')
    t.equal((await fanout.history(open)).length, 1, 'a stream with no final event is kept')
    const late = recorder()
    const sub = await fanout.subscribe(request, late.listener, 1)
    t.equal(sub.recovered, false, 'a resume after the stream was forgotten is not recovered')
    sub.close()
  })

  t.test('unsubscribe stops delivery and is idempotent', async (t) => {
    const fanout = await factory.make(t)
    const request = randomUUID()
    const a = recorder()
    const b = recorder()
    const subA = await fanout.subscribe(request, a.listener)
    const subB = await fanout.subscribe(request, b.listener)
    t.equal(fanout.listeners(request), 2)
    await fanout.publish(request, chunk('1'))
    await waitFor('first event', () => a.got.length === 1 && b.got.length === 1)
    subA.close()
    subA.close()
    t.equal(fanout.listeners(request), 1, 'a second close changes nothing')
    await fanout.publish(request, chunk('2'))
    await waitFor('second event', () => b.got.length === 2)
    await sleep(20)
    t.equal(a.got.length, 1, 'nothing after close')
    subB.close()
    t.equal(fanout.listeners(request), 0)
    const again = recorder()
    const subAgain = await fanout.subscribe(request, again.listener)
    await fanout.publish(request, chunk('3'))
    await waitFor('resubscribed', () => again.got.length === 1)
    t.equal(again.got[0].position, 3, 'a fresh subscription after everyone left still works')
    subAgain.close()
  })

  t.test('a listener that throws does not stop the others or the publisher', async (t) => {
    const errors: unknown[] = []
    const fanout = await factory.make(t, { log: (error) => errors.push(error) })
    const request = randomUUID()
    const before = recorder()
    const after = recorder()
    const subs = [
      await fanout.subscribe(request, before.listener),
      await fanout.subscribe(request, () => { throw new Error('listener broke') }),
      await fanout.subscribe(request, after.listener),
    ]
    for (let i = 0; i < 3; i++) await fanout.publish(request, chunk(`t${i}`))
    await waitFor('all listeners', () => before.got.length === 3 && after.got.length === 3)
    t.same(after.positions(), [1, 2, 3])
    await waitFor('errors logged', () => errors.length === 3)
    t.match(String(errors[0]), /listener broke/)
    for (const sub of subs) sub.close()
  })

  if (factory.shared) {
    t.test('a second instance sees the first one\'s events and history', async (t) => {
      const here = await factory.make(t)
      const there = await factory.make(t)
      const request = randomUUID()
      await here.publish(request, chunk('1'))
      const a = recorder()
      const sub = await there.subscribe(request, a.listener, 0)
      t.equal(there.listeners(request), 1)
      t.equal(here.listeners(request), 0, 'listeners counts this instance only')
      await here.publish(request, chunk('2', true))
      await waitFor('both events', () => a.got.length === 2)
      t.same(a.positions(), [1, 2])
      t.same((await there.history(request)).map((e) => e.position), [1, 2])
      sub.close()
    })
  }
}

// ---------------------------------------------------------------- control bus

interface ControlBusFactory {
  make(t: Test, options?: { log?: (error: unknown) => void }): Promise<ControlBus>
  /** Instances made for one test share a backend. */
  shared: boolean
}

export function controlBusContract(t: Test, factory: ControlBusFactory): void {
  t.test('each message reaches every handler of its type, and only those', async (t) => {
    const bus = await factory.make(t)
    const cancels: string[] = []
    const cancels2: string[] = []
    const revoked: number[] = []
    bus.on('cancel', (m) => void cancels.push(m.request))
    bus.on('cancel', (m) => void cancels2.push(m.request))
    bus.on('key_revoked', (m) => void revoked.push(m.keyId))
    await bus.publish({ type: 'cancel', request: 'r1' })
    t.same(cancels, ['r1'], 'this process\'s handlers have run when publish resolves')
    await bus.publish({ type: 'key_revoked', keyId: 7 })
    await bus.publish({ type: 'balance_changed', userId: 1, balance: 5 })
    await bus.publish({ type: 'cancel', request: 'r2' })
    await waitFor('deliveries', () => cancels.length === 2 && cancels2.length === 2 && revoked.length === 1)
    t.same(cancels, ['r1', 'r2'], 'in publish order')
    t.same(cancels2, ['r1', 'r2'])
    t.same(revoked, [7])
  })

  t.test('a removed handler hears nothing more, and removing twice is harmless', async (t) => {
    const bus = await factory.make(t)
    const removed: string[] = []
    const kept: string[] = []
    const off = bus.on('worker_replaced', (m) => void removed.push(m.session))
    bus.on('worker_replaced', (m) => void kept.push(m.session))
    await bus.publish({ type: 'worker_replaced', name: 'w', session: 's1' })
    await waitFor('first', () => removed.length === 1 && kept.length === 1)
    off()
    off()
    await bus.publish({ type: 'worker_replaced', name: 'w', session: 's2' })
    await waitFor('second', () => kept.length === 2)
    await sleep(20)
    t.same(removed, ['s1'])
    t.same(kept, ['s1', 's2'])
  })

  t.test('a handler that throws does not stop the others', async (t) => {
    const errors: unknown[] = []
    const bus = await factory.make(t, { log: (error) => errors.push(error) })
    const got: number[] = []
    bus.on('balance_changed', () => { throw new Error('handler broke') })
    bus.on('balance_changed', (m) => void got.push(m.balance))
    await bus.publish({ type: 'balance_changed', userId: 3, balance: 10 })
    await bus.publish({ type: 'balance_changed', userId: 3, balance: 11 })
    await waitFor('both', () => got.length === 2)
    t.same(got, [10, 11])
    t.equal(errors.length, 2)
  })

  if (factory.shared) {
    t.test('every instance hears every message, the publisher\'s own included', async (t) => {
      const here = await factory.make(t)
      const there = await factory.make(t)
      const atHere: string[] = []
      const atThere: string[] = []
      here.on('cancel', (m) => void atHere.push(m.request))
      there.on('cancel', (m) => void atThere.push(m.request))
      await here.publish({ type: 'cancel', request: 'a' })
      await there.publish({ type: 'cancel', request: 'b' })
      await waitFor('both instances', () => atHere.length === 2 && atThere.length === 2)
      t.same(atHere.sort(), ['a', 'b'])
      t.same(atThere.sort(), ['a', 'b'])
    })
  }
}

// ---------------------------------------------------------------- registry

/** Registries of one simulated cluster, and probes into its backend. */
interface RegistryCluster {
  /** A registry as a new process would open it (no read cache, so reads see the backend). */
  open(): Promise<WorkerRegistry>
  /** The process dies without a word: its liveness lapses, its entries stay behind. */
  crash(registry: WorkerRegistry): Promise<void>
  /** Whether the backend still stores an entry under this name. */
  stored(name: string): Promise<boolean>
  /** Whether the backend holds this process's liveness mark. */
  alive(processId: string): Promise<boolean>
}

type RegistryFactory = (t: Test) => Promise<RegistryCluster>

const worker = (name: string, session: string): Omit<OnlineWorker, 'process'> => ({
  name, session, owner: 'alice', models: ['m1', 'm2'], threads: 2, maxLength: 512, maxContextLength: 4096,
})

export function registryContract(t: Test, factory: RegistryFactory): void {
  t.test('join shows the worker to every process; leave removes it', async (t) => {
    const cluster = await factory(t)
    const a = await cluster.open()
    const b = await cluster.open()
    t.not(a.processId, b.processId)
    await a.join(worker('w1', 's1'))
    await b.join(worker('w2', 's2'))
    // Checked after a join: the mark is sent ahead of it, not awaited by the constructor.
    t.equal(await cluster.alive(a.processId), true)
    const seen = (await b.online()).sort((x, y) => x.name.localeCompare(y.name))
    t.same(seen, [{ ...worker('w1', 's1'), process: a.processId }, { ...worker('w2', 's2'), process: b.processId }])
    await a.leave('w1', 's1')
    t.same((await b.online()).map((w) => w.name), ['w2'])
    t.equal(await cluster.stored('w1'), false)
    await a.leave('nobody', 'sx')
    t.pass('leaving an unknown name is harmless')
  })

  t.test('an old session\'s leave does not remove a newer session\'s entry', async (t) => {
    const cluster = await factory(t)
    const a = await cluster.open()
    const b = await cluster.open()
    await a.join(worker('w', 'old'))
    // The worker reconnects, to another process, before the old socket's close is handled.
    await b.join({ ...worker('w', 'new'), threads: 4 })
    await a.leave('w', 'old')
    const seen = await a.online()
    t.equal(seen.length, 1)
    t.match(seen[0], { name: 'w', session: 'new', process: b.processId, threads: 4 })
    await b.leave('w', 'new')
    t.same(await a.online(), [])
  })

  t.test('entries of a dead process are dropped and deleted', async (t) => {
    const cluster = await factory(t)
    const a = await cluster.open()
    const b = await cluster.open()
    await a.join(worker('mine', 's1'))
    await b.join(worker('theirs', 's2'))
    await cluster.crash(b)
    t.equal(await cluster.alive(b.processId), false)
    t.same((await a.online()).map((w) => w.name), ['mine'])
    t.equal(await cluster.stored('theirs'), false, 'deleted, not just hidden')
    t.equal(await cluster.stored('mine'), true)
  })

  t.test('a name the dead process held and a live one took since survives the clean-up', async (t) => {
    const cluster = await factory(t)
    const a = await cluster.open()
    const b = await cluster.open()
    await b.join(worker('w', 'old'))
    await cluster.crash(b)
    await a.join(worker('w', 'new'))
    t.match(await a.online(), [{ name: 'w', session: 'new', process: a.processId }])
    t.equal(await cluster.stored('w'), true)
  })

  t.test('close removes the liveness mark: its workers vanish for everyone', async (t) => {
    const cluster = await factory(t)
    const a = await cluster.open()
    const b = await cluster.open()
    await b.join(worker('w', 's'))
    await b.close()
    await b.close()
    t.equal(await cluster.alive(b.processId), false)
    t.same(await a.online(), [])
  })
}

// ---------------------------------------------------------------- the runs

t.test('memory fan-out', async (t) => {
  fanoutContract(t, {
    shared: false,
    async make(t, options) {
      const fanout = createMemoryFanout(options)
      t.teardown(() => fanout.close())
      return fanout
    },
  })
})

t.test('memory control bus', async (t) => {
  controlBusContract(t, {
    shared: false,
    async make(t, options) {
      const bus = createMemoryControlBus(options)
      t.teardown(() => bus.close())
      return bus
    },
  })
})

t.test('memory registry', async (t) => {
  registryContract(t, async (t) => {
    const space = createMemoryRegistrySpace()
    const opened: WorkerRegistry[] = []
    t.teardown(async () => { for (const r of opened) await r.close() })
    return {
      async open() {
        const registry = createMemoryRegistry({ space })
        opened.push(registry)
        return registry
      },
      async crash(registry) { space.alive.delete(registry.processId) },
      async stored(name) { return space.workers.has(name) },
      async alive(processId) { return space.alive.has(processId) },
    }
  })
})

t.test('redis', async (t) => {
  const server = await startTestRedis(t, { appendOnly: false })
  /** Connections opened for a test, quit at its end (tap fails a file that leaks sockets). */
  const connect = (t: Test, name: string): Redis => {
    const redis = createRedis(server.url, name)
    t.teardown(() => redis.quit().catch(() => redis.disconnect()))
    return redis
  }

  const openRegistries = (t: Test, prefix: string, options: Partial<RedisRegistryOptions> = {}) => {
    const keys = createClusterKeys(prefix)
    return (extra: Partial<RedisRegistryOptions> = {}) => {
      const registry = createRedisRegistry({ redis: connect(t, 'registry'), keys, log: (e) => t.fail(String(e)), cacheMs: 0, ...options, ...extra })
      t.teardown(() => registry.close())
      return registry
    }
  }

  /** One key prefix per test: instances made for the same test share it, like processes of one cluster. */
  const prefixes = new WeakMap<Test, string>()
  const prefixFor = (t: Test) => {
    let prefix = prefixes.get(t)
    if (!prefix) prefixes.set(t, (prefix = `test-${randomUUID()}`))
    return prefix
  }

  t.test('fan-out', async (t) => {
    fanoutContract(t, {
      shared: true,
      async make(t, options = {}) {
        const fanout = createRedisFanout({ url: server.url, keys: createClusterKeys(prefixFor(t)), log: (e) => t.fail(String(e)), ...options })
        t.teardown(() => fanout.close())
        return fanout
      },
    })
  })

  t.test('fan-out: events lost while the feed reconnects are read back from the stream', async (t) => {
    const keys = createClusterKeys(prefixFor(t))
    const errors: unknown[] = []
    const fanout = createRedisFanout({ url: server.url, keys, log: (e) => errors.push(e) })
    t.teardown(() => fanout.close())
    const publisher = createRedisFanout({ url: server.url, keys, log: (e) => t.fail(String(e)) })
    t.teardown(() => publisher.close())
    const probe = connect(t, 'probe')
    const request = randomUUID()
    const a = recorder()
    const sub = await fanout.subscribe(request, a.listener)
    await publisher.publish(request, chunk('1'))
    await waitFor('first', () => a.got.length === 1)
    // Drops every subscriber connection; ioredis reconnects and subscribes again by itself.
    await probe.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await publisher.publish(request, chunk('2'))
    await publisher.publish(request, chunk('3'))
    await eventually(async () => {
      await publisher.publish(request, chunk('more'))
      return a.got.length >= 4
    }, 5000, 'the feed to come back')
    const last = await publisher.publish(request, chunk('end', true))
    await waitFor('the end', () => a.positions().at(-1) === last)
    t.same(a.positions(), range(1, last), 'nothing lost, nothing twice, in order')
    await sleep(50)
    t.same(errors.map(String), [], 'the re-read after the reconnect went through')
    sub.close()
  })

  t.test('fan-out: one feed connection per instance, and channels left when nobody watches', async (t) => {
    const keys = createClusterKeys(prefixFor(t))
    const fanout = createRedisFanout({ url: server.url, keys, log: (e) => t.fail(String(e)) })
    t.teardown(() => fanout.close())
    const probe = connect(t, 'probe')
    const requests = range(1, 10).map(() => randomUUID())
    const subs = await Promise.all(requests.map((r) => fanout.subscribe(r, () => {})))
    const feeds = String(await probe.client('LIST')).split('\n').filter((line) => / name=fanout-feed /.test(line))
    t.equal(feeds.length, 1, 'ten requests, one subscriber connection')
    const counts = async () => (await probe.pubsub('NUMSUB', ...requests.map((r) => keys.events(r)))) as Array<string | number>
    t.same((await counts()).filter((_, i) => i % 2 === 1).map(Number), Array(10).fill(1))
    for (const sub of subs) sub.close()
    await eventually(async () => (await counts()).filter((_, i) => i % 2 === 1).every((n) => Number(n) === 0), 5000, 'unsubscribed')
    t.pass('every channel unsubscribed')
  })

  t.test('fan-out and control bus of one process share one subscriber connection', async (t) => {
    const keys = createClusterKeys(prefixFor(t))
    const feedName = `feed-${randomUUID().slice(0, 8)}`
    const log = (e: unknown) => t.fail(String(e))
    const feed = createRedisFeed({ url: server.url, log, name: feedName })
    t.teardown(() => feed.close())
    const fanout = createRedisFanout({ url: server.url, keys, log, feed })
    t.teardown(() => fanout.close())
    const bus = await createRedisControlBus({ url: server.url, keys, log, feed })
    t.teardown(() => bus.close())
    const other = await createRedisControlBus({ url: server.url, keys, log })
    t.teardown(() => other.close())
    const request = randomUUID()
    const a = recorder()
    const sub = await fanout.subscribe(request, a.listener, 0)
    const cancels: string[] = []
    bus.on('cancel', (m) => void cancels.push(m.request))
    await fanout.publish(request, chunk('1'))
    await other.publish({ type: 'cancel', request })
    await waitFor('both feeds', () => a.got.length === 1 && cancels.length === 1)
    const probe = connect(t, 'probe')
    const lines = String(await probe.client('LIST')).split('\n').filter((line) => line.includes(` name=${feedName} `))
    t.equal(lines.length, 1, 'one subscriber connection for both')
    sub.close()
    await fanout.close()
    await other.publish({ type: 'cancel', request: 'after' })
    await waitFor('the bus still hears', () => cancels.length === 2)
    t.same(cancels, [request, 'after'], 'closing the fan-out leaves the shared feed to the bus')
  })

  t.test('control bus', async (t) => {
    controlBusContract(t, {
      shared: true,
      async make(t, options = {}) {
        const bus = await createRedisControlBus({ url: server.url, keys: createClusterKeys(prefixFor(t)), log: (e) => t.fail(String(e)), ...options })
        t.teardown(() => bus.close())
        return bus
      },
    })
  })

  t.test('registry', async (t) => {
    registryContract(t, async (t) => {
      const prefix = `test-${randomUUID()}`
      const keys = createClusterKeys(prefix)
      const probe = connect(t, 'probe')
      const open = openRegistries(t, prefix)
      return {
        async open() { return open() },
        async crash(registry) { await probe.del(keys.process(registry.processId)) },
        async stored(name) { return (await probe.hexists(keys.workers, name)) === 1 },
        async alive(processId) { return (await probe.exists(keys.process(processId))) === 1 },
      }
    })
  })

  t.test('registry: a process that stops refreshing lapses after its TTL', async (t) => {
    const prefix = `test-${randomUUID()}`
    const open = openRegistries(t, prefix)
    const a = open()
    const b = open({ ttlMs: 150, refreshMs: 60_000 })
    await b.join(worker('w', 's'))
    t.same((await a.online()).map((w) => w.name), ['w'], 'shown while its key lives')
    await eventually(async () => (await a.online()).length === 0, 5000, 'the entry to lapse')
    t.pass('gone once the key expired')
  })

  t.test('registry: a live process keeps refreshing its key', async (t) => {
    const prefix = `test-${randomUUID()}`
    const open = openRegistries(t, prefix)
    // Margins wide enough for a loaded machine: a refresh may come late, not three times late.
    const a = open({ ttlMs: 600, refreshMs: 50 })
    await a.join(worker('w', 's'))
    await sleep(1300)
    t.same((await a.online()).map((w) => w.name), ['w'])
  })

  t.test('registry: online() is cached, and join or leave here drops the cache', async (t) => {
    const prefix = `test-${randomUUID()}`
    const open = openRegistries(t, prefix)
    const a = open({ cacheMs: 60_000 })
    const b = open()
    t.same(await a.online(), [])
    await b.join(worker('elsewhere', 's1'))
    t.same(await a.online(), [], 'another process\'s join shows only after the cache lapses')
    await a.join(worker('here', 's2'))
    t.same((await a.online()).map((w) => w.name).sort(), ['elsewhere', 'here'], 'a join here re-reads')
    await b.leave('elsewhere', 's1')
    t.equal((await a.online()).length, 2, 'still cached')
    await a.leave('here', 's2')
    t.same(await a.online(), [], 'a leave here re-reads')
  })
})
