/**
 * This process's polling workers, by name, and the job ids they hold. A pop checks its worker
 * in: the first pop of a name (or one that says something new: other models, limits,
 * threads or priority users) announces a new session to the workforce, exactly as a worker
 * socket's `announce` does, so one name is one session across both doors. A submit finds its
 * job by id; ids that ended are remembered for a while, so a repeat is told apart from a
 * stale or made-up id.
 */
import type { Principal } from '../accounts/accounts.js'
import type { Workforce } from '../core/workforce.js'
import { BrokerError } from '../errors.js'
import { PollingLink, type CheckIn, type Ended } from './polling-link.js'

export interface BridgesDeps {
  workforce: Workforce
  jobTtlMs: number
  idleMs: number
  log(error: unknown): void
}

export interface Bridges {
  /** The worker's session for this check-in: the current one, or a new one announced now. */
  checkIn(principal: Principal, checkIn: CheckIn): Promise<PollingLink>
  /** Settles a submitted job; resolves with the reward in kudos. */
  submit(principal: Principal, jobId: string, text: string, faulted: boolean): Promise<number>
  byName(name: string): PollingLink | undefined
  /** This process's polling workers that are online. */
  links(): PollingLink[]
  /** Ends every session (the broker stops): their jobs go back to the queue. */
  close(): void
}

/** How many ended job ids are remembered, and for how long. */
const ENDED_KEPT = 10_000
const ENDED_KEPT_MS = 3_600_000

function sameCheckIn(a: CheckIn, b: CheckIn): boolean {
  const same = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((v, i) => v === y[i])
  return a.maxLength === b.maxLength && a.maxContextLength === b.maxContextLength && a.threads === b.threads &&
    same(a.models, b.models) && same(a.priorityUsernames, b.priorityUsernames)
}

export function createBridges(deps: BridgesDeps): Bridges {
  const byName = new Map<string, PollingLink>()
  const announcing = new Map<string, Promise<PollingLink>>()
  const jobs = new Map<string, PollingLink>()
  const ended = new Map<string, { how: Ended; at: number }>()

  function remember(jobId: string, how: Ended): void {
    jobs.delete(jobId)
    ended.delete(jobId)
    ended.set(jobId, { how, at: Date.now() })
    const cutoff = Date.now() - ENDED_KEPT_MS
    for (const [id, entry] of ended) {
      if (ended.size <= ENDED_KEPT && entry.at >= cutoff) break
      ended.delete(id)
    }
  }

  async function announce(principal: Principal, checkIn: CheckIn): Promise<PollingLink> {
    const link = new PollingLink({
      principal, checkIn, workforce: deps.workforce, jobTtlMs: deps.jobTtlMs, idleMs: deps.idleMs, log: deps.log,
      leased: (jobId, holder) => jobs.set(jobId, holder),
      ended: remember,
      closedDown: (gone) => { if (byName.get(gone.checkIn.name) === gone) byName.delete(gone.checkIn.name) },
    })
    try {
      await deps.workforce.announce(link.state, {
        type: 'announce', name: checkIn.name, models: checkIn.models, max_length: checkIn.maxLength,
        max_context_length: checkIn.maxContextLength, threads: checkIn.threads, priority_usernames: checkIn.priorityUsernames,
      })
    } catch (error) {
      link.close('check-in refused')
      throw error
    }
    if (link.closed) throw new BrokerError('unavailable', 'The worker was replaced while it checked in; try again')
    byName.set(checkIn.name, link)
    return link
  }

  async function checkIn(principal: Principal, wanted: CheckIn): Promise<PollingLink> {
    for (;;) {
      const pending = announcing.get(wanted.name)
      if (pending) {
        await pending.catch(() => {})
        continue
      }
      const current = byName.get(wanted.name)
      if (current && !current.closed) {
        if (current.principal.userId !== principal.userId) throw new BrokerError('worker_name_taken', 'Wrong credentials to submit as this worker.')
        if (sameCheckIn(current.checkIn, wanted)) return current
        // A bridge restarted with another configuration: a new session (its old jobs go back).
        current.close('worker re-configured')
      }
      const made = announce(principal, wanted)
      announcing.set(wanted.name, made)
      try {
        return await made
      } finally {
        announcing.delete(wanted.name)
      }
    }
  }

  return {
    checkIn,
    async submit(principal, jobId, text, faulted) {
      const link = jobs.get(jobId)
      if (!link || !link.holds(jobId)) {
        const how = ended.get(jobId)?.how.kind
        if (how === 'submitted') throw new BrokerError('already_submitted', `Processing Generation with ID ${jobId} already submitted.`)
        // Cancelled by its requester while it ran: nothing to pay, nothing wrong.
        if (how === 'stopped') return 0
        throw new BrokerError('unknown_job', `Processing Job with ID ${jobId} does not exist.`)
      }
      if (link.principal.userId !== principal.userId) throw new BrokerError('forbidden', 'Wrong credentials to submit as this worker.', { rc: 'WrongCredentials' })
      return link.submit(jobId, text, faulted)
    },
    byName: (name) => byName.get(name),
    links: () => [...byName.values()].filter((link) => !link.closed),
    close() {
      for (const link of [...byName.values()]) link.close('server shutting down')
    },
  }
}
