/**
 * Assembles a broker from a config: database, Redis, ledger, accounts, the HTTP app.
 * `main.ts` calls it for the real process; tests call it with a temp dir and their own Redis.
 */
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { createAccounts } from './accounts/accounts.js'
import { createIdentities } from './accounts/identities.js'
import type { Config } from './config.js'
import { DB_FILE } from './db/open.js'
import { buildApp } from './http/app.js'
import { createLedger } from './ledger/ledger.js'
import { createTransfers } from './ledger/transfers.js'
import { createAdmin } from './admin/admin.js'
import { openStore } from './store/open-store.js'
import { createMetrics } from './metrics.js'
import { createRedis, findRedis, type RedisTarget } from './redis/connect.js'
import { loadModelRegistry } from './economy/models.js'
import type { UptimeClock } from './economy/uptime.js'
import { createClusterKeys } from './cluster/keys.js'
import { bridgeAccounts, isRemote } from './cluster/account-bridge.js'
import { createMemoryControlBus } from './cluster/memory-control-bus.js'
import { createMemoryFanout } from './cluster/memory-fanout.js'
import { createRedisRegistry } from './cluster/redis-registry.js'
import { createRedisUptimeJournal, UPTIME_JOURNAL_MIN_TTL_MS } from './cluster/uptime-journal.js'
import { createRedisFanout } from './cluster/redis-fanout.js'
import { createRedisControlBus } from './cluster/redis-control-bus.js'
import { createRedisFeed, type RedisFeed } from './cluster/redis-feed.js'
import type { ControlBus, Fanout } from './cluster/ports.js'
import { createCore, type Core } from './core/core.js'
import { registerGenerateRoutes } from './http/routes/generate.js'
import { registerModelRoutes } from './http/routes/models.js'
import { registerAdminRoutes } from './http/routes/admin.js'
import { registerOpenAiRoutes } from './openai/routes.js'
import { registerHordeApiRoutes, type HordeApi } from './horde-api/routes.js'
import { registerSocketRoutes } from './http/routes/sockets.js'
import { JobQueue } from './queue/job-queue.js'
import { createKeys } from './queue/keys.js'
import type { Services } from './services.js'
import { createHordeView } from './web/horde-view.js'
import { Hub } from './gateway/connection.js'
import { createLimits } from './limits/limits.js'
import { CloseCode } from './protocol/envelope.js'

export interface Broker {
  readonly app: FastifyInstance
  readonly services: Services
  readonly core: Core
  readonly jobQueue: JobQueue
  readonly redisTarget: RedisTarget
  /** Listens on the configured host and port; returns the base URL. */
  listen(): Promise<string>
  /**
   * A graceful stop's first half: no new requests, sockets or jobs here; running jobs go on for
   * up to `seconds` while their watchers stay; every other socket is closed with 1012
   * (reconnect elsewhere) as soon as it has nothing running here. What is still running at the
   * deadline is stopped and handed back to its queue. `close()` follows.
   */
  drain(seconds: number): Promise<DrainOutcome>
  /** Stops taking work, closes sockets and connections, stops a private Redis. */
  close(): Promise<void>
}

export interface DrainOutcome {
  /** Jobs that were running when the drain began. */
  running: number
  /** Jobs still running at the deadline, handed back to their queues. */
  handedBack: number
  seconds: number
}

export { DB_FILE }

export interface BrokerOptions {
  /** The clock uptime is measured on; tests inject one. */
  clock?: UptimeClock
  /** Wall-clock milliseconds for submission times and ageing; tests inject one. */
  wallClock?: () => number
}

export async function createBroker(config: Config, options: BrokerOptions = {}): Promise<Broker> {
  const models = loadModelRegistry(config.modelsFile)
  const store = await openStore(config)
  // ADMIN_USERS first: a name it cannot honour stops the start before anything else is opened.
  let adminLines: string[]
  try {
    adminLines = await createAdmin(store, { maxKudos: config.kudos.maxTransfer }).applyAdminUsers(config.adminUsers)
  } catch (error) {
    await store.close()
    throw error
  }
  let redisTarget: RedisTarget
  try {
    redisTarget = await findRedis(config.redisUrl, config.dataDir)
  } catch (error) {
    await store.close()
    throw error
  }
  const redis = createRedis(redisTarget.url, 'horde-broker')
  const metrics = createMetrics()
  const log = pino({
    level: config.logLevel,
    // API keys travel in these headers: never log them.
    redact: ['req.headers.apikey', 'req.headers.authorization', 'req.headers.cookie'],
    serializers: {
      // Request lines are logged without their query string: the OAuth callback carries the
      // provider's authorization code and the login state there.
      req: (req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: req.method,
        url: typeof req.url === 'string' ? req.url.split('?')[0] : req.url,
        host: req.host,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
  })
  const clusterLog = (error: unknown) => log.warn({ err: error }, 'cluster')
  const clusterKeys = createClusterKeys(config.redisPrefix)
  const ledger = createLedger(store)
  ledger.events.on('change', (change) => { if (!isRemote(change)) metrics.ledgerPostings.inc({ kind: change.kind }) })
  const accounts = createAccounts(store)
  const services: Services = {
    config,
    store,
    redis,
    ledger,
    accounts,
    identities: createIdentities(store),
    transfers: createTransfers(store, { maxKudos: config.kudos.maxTransfer }),
    admin: createAdmin(store, { maxKudos: config.kudos.maxTransfer }),
    metrics,
    log,
    hub: new Hub(config.heartbeatSeconds * 1000),
    // One process counts in memory (no round trip); several count in the shared Redis.
    limits: createLimits(config, config.cluster ? { redis, keys: clusterKeys, log: clusterLog } : undefined),
    // The core, built below, is the source; the closure reads it when a snapshot is taken.
    status: { snapshot: () => core.status() },
    draining: false,
    // Read through the core, built below, like the status.
    horde: createHordeView(() => core, models, { divisor: config.kudos.generationDivisor, now: options.wallClock }),
  }
  const keys = createKeys(config.redisPrefix)
  const jobQueue = new JobQueue({ redis, keys, lockMs: config.jobLockSeconds * 1000, maxAttempts: config.jobMaxAttempts })
  const subscriber = createRedis(redisTarget.url, 'horde-broker-sub')
  // ioredis reconnects by itself; an error event without a listener would crash the process.
  for (const client of [redis, subscriber]) client.on('error', (error) => log.warn({ err: error }, 'redis connection error'))
  // A final event's stream is kept a few seconds only: a watcher that comes later reads the
  // finished request from the store.
  let feed: RedisFeed | undefined
  let fanout: Fanout
  let control: ControlBus
  if (config.cluster) {
    // Several processes: events and commands cross Redis, on one subscriber connection.
    feed = createRedisFeed({ url: redisTarget.url, log: clusterLog, name: 'horde-broker-feed' })
    fanout = createRedisFanout({ url: redisTarget.url, keys: clusterKeys, log: clusterLog, feed, forgetMs: 5000 })
    control = await createRedisControlBus({ url: redisTarget.url, keys: clusterKeys, log: clusterLog, feed })
  } else {
    fanout = createMemoryFanout({ forgetMs: 5000, log: clusterLog })
    control = createMemoryControlBus({ log: clusterLog })
  }
  const registry = createRedisRegistry({ redis, keys: clusterKeys, log: clusterLog })
  // Revoked keys and ledger postings reach the sockets and bots of every process.
  const unbridge = config.cluster
    ? bridgeAccounts({ control, processId: registry.processId, accounts: accounts.events, ledger: ledger.events, log: clusterLog })
    : () => undefined
  const core = createCore({
    config, store, jobQueue, keys, fanout, control, registry, models, metrics, redis, subscriber, log,
    findUser: async (username) => services.accounts.byName(username),
    clock: options.clock, wallClock: options.wallClock,
    // Uptime a killed process observed but had not paid is paid by another (or the next) process.
    uptimeJournal: createRedisUptimeJournal({ redis, keys: clusterKeys, processId: registry.processId, ttlMs: Math.max(3 * config.heartbeatSeconds * 1000, UPTIME_JOURNAL_MIN_TTL_MS) }),
  })
  for (const line of adminLines) log.info({ adminUsers: config.adminUsers }, line)
  await core.moderation.start()
  services.moderationChanged = () => core.moderation.sync()
  await jobQueue.loadClasses()
  jobQueue.start()
  // Accepted requests that Redis no longer holds (it restarted without them, or was flushed).
  await core.recovery.reconcile()
  services.refreshMetrics = async () => { await core.status() }
  let hordeApi: HordeApi | undefined
  const app = await buildApp(services, {
    extend(app) {
      registerGenerateRoutes(app, services, core)
      registerOpenAiRoutes(app, services, core, models)
      hordeApi = registerHordeApiRoutes(app, { services, core, jobQueue, models })
      registerSocketRoutes(app, services, core)
      registerModelRoutes(app, core, models)
      registerAdminRoutes(app, services, models)
    },
  })

  let closed: Promise<void> | undefined
  let drained: Promise<DrainOutcome> | undefined
  async function drain(seconds: number): Promise<DrainOutcome> {
    const started = performance.now()
    services.draining = true
    core.drain()
    const running = core.runner.size
    const deadline = started + seconds * 1000
    const reason = 'server draining: reconnect'
    while (services.hub.closeIdle(CloseCode.Restarting, reason) > 0 || core.runner.size > 0) {
      if (performance.now() >= deadline) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const handedBack = core.runner.size
    await core.runner.handBack('the broker process stopped (drain deadline)')
    services.hub.closeAll(CloseCode.Restarting, reason)
    return { running, handedBack, seconds: (performance.now() - started) / 1000 }
  }
  return {
    app,
    services,
    core,
    jobQueue,
    redisTarget,
    async listen() {
      const url = await app.listen({ host: config.host, port: config.port })
      services.hub.start()
      return url
    },
    drain(seconds) {
      drained ??= drain(seconds)
      return drained
    },
    close() {
      closed ??= (async () => {
        core.stopAccepting()
        services.hub.closeAll(CloseCode.GoingAway, 'server shutting down')
        hordeApi?.close()
        await app.close()
        await core.close()
        unbridge()
        await Promise.all([fanout.close(), control.close(), registry.close(), services.limits.close()])
        await feed?.close()
        await jobQueue.close()
        await redis.quit().catch(() => redis.disconnect())
        await store.close()
        if (redisTarget.owned) await redisTarget.owned.stop()
      })()
      return closed
    },
  }
}
