/** What the edges (HTTP routes, socket sessions) are handed: the broker's parts, built in broker.ts. */
import type { Redis } from 'ioredis'
import type { Accounts } from './accounts/accounts.js'
import type { Identities } from './accounts/identities.js'
import type { Config } from './config.js'
import type { Ledger } from './ledger/ledger.js'
import type { Transfers } from './ledger/transfers.js'
import type { Store } from './store/ports.js'
import type { Metrics } from './metrics.js'
import type { Hub } from './gateway/connection.js'
import type { Logger } from 'pino'
import type { StatusSource } from './protocol/status.js'
import type { HordeView } from './web/horde-view.js'
import type { Admin } from './admin/admin.js'
import type { Limits } from './limits/limits.js'

export interface Services {
  readonly config: Config
  /** Every read and write of the broker's database. */
  readonly store: Store
  readonly redis: Redis
  readonly ledger: Ledger
  readonly accounts: Accounts
  /** OAuth logins linked to users. */
  readonly identities: Identities
  readonly transfers: Transfers
  /** Operator actions (roles, suspension, worker trust and pause, awards) and their audit trail. */
  readonly admin: Admin
  /** Applies a change made here at once (other processes read it from the trail within MODERATION_POLL_SECONDS). */
  moderationChanged?: () => Promise<void>
  readonly metrics: Metrics
  /** This process's sockets and their heartbeat. */
  readonly hub: Hub
  /** Per-address and per-user limits of the socket edge (shared by every process with CLUSTER=on). */
  readonly limits: Limits
  /** The process logger (fastify's too). Never given API keys or prompt text at info level. */
  readonly log: Logger
  /** Brings gauges that are computed on demand (waiting requests per model) up to date before a scrape. */
  refreshMetrics?: () => Promise<void>
  /** What the status page and `/v1/status/live` show; the core provides the real one. */
  readonly status: StatusSource
  /** Set when a drain starts: `/health` answers 503 and no new socket is taken. */
  draining: boolean
  /** What the pages and chart endpoints read of the horde (workers, queues, history); the core provides it. */
  readonly horde: HordeView
}
