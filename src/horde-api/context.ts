/** What the v2 routes are handed: the broker's parts they call, built once in routes.ts. */
import type { Config } from '../config.js'
import type { Core } from '../core/core.js'
import type { ModelRegistry } from '../economy/models.js'
import type { JobQueue } from '../queue/job-queue.js'
import type { Services } from '../services.js'
import type { Bridges } from './bridges.js'
import type { Groups } from './groups.js'

export interface HordeApiContext {
  services: Services
  config: Config
  core: Core
  /** Read for the status routes and a pop's `skipped` counts (waiting jobs per class). */
  jobQueue: JobQueue
  models: ModelRegistry
  bridges: Bridges
  groups: Groups
}
