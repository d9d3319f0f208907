/**
 * Assembles a broker from a config: database, Redis, ledger, accounts, the HTTP app.
 * `main.ts` calls it for the real process; tests call it with a temp dir and their own Redis.
 */
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createAccounts } from './accounts/accounts.js'
import { createIdentities } from './accounts/identities.js'
import type { Config } from './config.js'
import { openDb } from './db/open.js'
import { buildApp } from './http/app.js'
import { createLedger } from './ledger/ledger.js'
import { createTransfers } from './ledger/transfers.js'
import { createMetrics } from './metrics.js'
import { createRedis, findRedis, type RedisTarget } from './redis/connect.js'
import type { Services } from './services.js'
import { Hub } from './gateway/connection.js'
import { CloseCode } from './protocol/envelope.js'
import { createLedgerStatusSource } from './web/status.js'

export interface Broker {
  readonly app: FastifyInstance
  readonly services: Services
  readonly redisTarget: RedisTarget
  /** Listens on the configured host and port; returns the base URL. */
  listen(): Promise<string>
  /** Stops taking work, closes sockets and connections, stops a private Redis. */
  close(): Promise<void>
}

export const DB_FILE = 'horde.sqlite'

export async function createBroker(config: Config): Promise<Broker> {
  const opened = openDb(path.join(config.dataDir, DB_FILE), { synchronous: config.sqliteSynchronous })
  let redisTarget: RedisTarget
  try {
    redisTarget = await findRedis(config.redisUrl, config.dataDir)
  } catch (error) {
    opened.close()
    throw error
  }
  const redis = createRedis(redisTarget.url, 'horde-broker')
  const metrics = createMetrics()
  const ledger = createLedger(opened.db)
  ledger.events.on('change', (change) => metrics.ledgerPostings.inc({ kind: change.kind }))
  const accounts = createAccounts(opened.db)
  const services: Services = {
    config,
    db: opened.db,
    sqlite: opened.sqlite,
    redis,
    ledger,
    accounts,
    identities: createIdentities(opened.db, accounts),
    transfers: createTransfers(opened.db, ledger, { maxKudos: config.kudos.maxTransfer }),
    metrics,
    hub: new Hub(config.heartbeatSeconds * 1000, config.limits.connectionsPerIp),
    status: createLedgerStatusSource(opened.db),
  }
  const app = await buildApp(services)

  let closed: Promise<void> | undefined
  return {
    app,
    services,
    redisTarget,
    async listen() {
      const url = await app.listen({ host: config.host, port: config.port })
      services.hub.start()
      return url
    },
    close() {
      closed ??= (async () => {
        services.hub.closeAll(CloseCode.GoingAway, 'server shutting down')
        await app.close()
        await redis.quit().catch(() => redis.disconnect())
        opened.close()
        if (redisTarget.owned) await redisTarget.owned.stop()
      })()
      return closed
    },
  }
}
