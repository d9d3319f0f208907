/**
 * The horde at a glance, as `GET /v1/status` and the `/v1/status/live` socket serve it, and
 * the port its source implements (the core's status; a leaderboard-only source for pages
 * tested alone).
 */

export interface WorkerStatus {
  /** The worker's public name. */
  name: string
  /** Username of the worker's owner. */
  owner: string
  /** Models the worker serves. */
  models: string[]
  /** Jobs the worker finished since it connected. */
  jobs: number
  /** Seconds since the worker connected. */
  uptime_s: number
  /** When the worker connected, ms since the epoch (pages count the uptime on from it); null when unknown. */
  online_since?: number | null
}

export interface StatusSnapshot {
  /** Workers online now. */
  workers: WorkerStatus[]
  /** Requests waiting, per model name. */
  waiting: Record<string, number>
  /** Recent throughput over the last minutes. */
  throughput: { jobs_per_min: number; tokens_per_min: number }
  /** The users with the most kudos, highest first (Anonymous never listed). */
  top: Array<{ username: string; kudos: number }>
}

/** The port: a snapshot of the horde, cheap enough to take every push interval. */
export interface StatusSource {
  snapshot(): Promise<StatusSnapshot>
}

/** How many users the leaderboard lists. */
export const TOP_USERS = 10

