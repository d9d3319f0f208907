/**
 * The storage port of moderation: roles, suspension, worker trust and pause, moderators'
 * awards, and the audit trail that records each of them. Same rules as src/store/ports.ts:
 * named async operations, each atomic. Every change is written in one transaction with its
 * `admin_actions` row, so the trail never misses a change and never records one that did
 * not happen; the trail is also the feed other broker processes (and a broker whose
 * database `horde-admin` changed) read to learn of changes.
 */
import type { EntryInput } from '../economy/posting-rules.js'

/** What an action did. */
export type AdminActionKind =
  | 'role_grant' | 'role_revoke'
  | 'user_suspend' | 'user_unsuspend'
  | 'sessions_end'
  | 'worker_trust' | 'worker_untrust'
  | 'worker_pause' | 'worker_unpause'
  | 'award'

export const ADMIN_ACTION_KINDS: readonly AdminActionKind[] = [
  'role_grant', 'role_revoke', 'user_suspend', 'user_unsuspend', 'sessions_end', 'worker_trust', 'worker_untrust', 'worker_pause', 'worker_unpause', 'award',
]

/** Who acted: a user (REST with a moderator's or admin's key), or the operator without one. */
export interface Actor {
  /** Null for the operator on the database or start-up (`ADMIN_USERS`). */
  id: number | null
  /** Shown in the trail: a username, `cli:<os user>`, `ADMIN_USERS`. */
  name: string
}

/** One row of the audit trail. */
export interface AdminActionRecord {
  id: number
  actorId: number | null
  actor: string
  action: AdminActionKind
  targetUserId: number | null
  targetWorkerId: number | null
  /** The target's name at the time. */
  target: string
  reason: string
  /** A role, an amount (milli-kudos) and its ledger entry id, a worker's owner... */
  details: Record<string, unknown>
  createdAt: number
}

/** What a change records about itself (the store adds the target, the id and the time). */
export interface ActionInput {
  actor: Actor
  reason: string
  at: number
  details?: Record<string, unknown>
}

/** A worker row with its moderation flags, as operators list it. */
export interface ModeratedWorker {
  id: number
  name: string
  ownerId: number
  owner: string
  trusted: boolean
  pausedAt: number | null
  pausedReason: string | null
  lastSeenAt: number | null
  jobs: number
  tokens: number
  /** Milli-kudos earned by generation and uptime. */
  earned: number
}

export interface ActionFilter {
  /** Only rows with an id above this (the feed's cursor). */
  after?: number
  /** Only rows with an id below this (paging back). */
  before?: number
  targetUserId?: number
  targetWorkerId?: number
  /** Most rows returned, at most 500. */
  limit?: number
}

export interface ModerationStore {
  /**
   * Sets a user's roles to `roles` and records `action` (role_grant or role_revoke), in one
   * transaction. Null when the roles were already those (nothing written).
   */
  setRoles(userId: number, roles: string[], action: 'role_grant' | 'role_revoke', input: ActionInput): Promise<AdminActionRecord | null>
  /** Suspends (or lifts the suspension of) a user and records it; a suspension ends the user's browser sessions in the same write. Null when it already was. */
  setSuspended(userId: number, suspended: boolean, input: ActionInput): Promise<AdminActionRecord | null>
  /** Ends every browser session of the user and records it (details: `ended`, how many), in one write. */
  endSessions(userId: number, input: ActionInput): Promise<{ ended: number; action: AdminActionRecord }>
  /** Marks a worker trusted or not and records it; null when it already was. */
  setTrusted(workerId: number, trusted: boolean, input: ActionInput): Promise<AdminActionRecord | null>
  /** Pauses (with the action's reason) or unpauses a worker and records it; null when it already was. */
  setPaused(workerId: number, paused: boolean, input: ActionInput): Promise<AdminActionRecord | null>
  /** Appends an award entry and its trail row (details: amount, entry id) in one transaction. */
  award(entry: EntryInput, input: ActionInput): Promise<{ entryId: number; action: AdminActionRecord }>
  /** Trail rows, newest first (oldest first with `after`: the feed reads forward). */
  actions(filter?: ActionFilter): Promise<AdminActionRecord[]>
  /** The newest row's id, 0 when the trail is empty (where a new process starts reading). */
  lastActionId(): Promise<number>
  /** Users suspended now. */
  suspendedUsers(): Promise<number[]>
  /** Users holding `role`, by id. */
  usersWithRole(role: string): Promise<Array<{ id: number; username: string; roles: string[] }>>
  /** Workers with their flags and owner's name, by name (with `ownerId`: that user's only). */
  workers(filter?: { ownerId?: number; limit?: number; offset?: number }): Promise<ModeratedWorker[]>
  workerByName(name: string): Promise<ModeratedWorker | undefined>
}
