/** How operator records are shown over REST and by `horde-admin --json`: snake_case, kudos as numbers, times as ISO text. */
import { toKudos } from '../economy/amounts.js'
import { totalsView } from '../protocol/views.js'
import type { AdminActionRecord, ModeratedWorker } from '../store/ports.js'
import type { UserReport } from './admin.js'

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export function adminActionView(row: AdminActionRecord) {
  const details = { ...row.details }
  if (row.action === 'award' && typeof details.amount === 'number') details.amount = toKudos(details.amount)
  return {
    id: row.id, action: row.action, actor: row.actor, actor_id: row.actorId, target: row.target,
    target_user_id: row.targetUserId, target_worker_id: row.targetWorkerId, reason: row.reason, details, at: iso(row.createdAt),
  }
}

export function moderatedWorkerView(worker: ModeratedWorker) {
  return {
    id: worker.id, name: worker.name, owner: worker.owner, owner_id: worker.ownerId, trusted: worker.trusted,
    paused: worker.pausedAt !== null, paused_at: iso(worker.pausedAt), paused_reason: worker.pausedReason,
    last_seen_at: iso(worker.lastSeenAt), jobs: worker.jobs, tokens: worker.tokens, earned: toKudos(worker.earned),
  }
}

export function userReportView(report: UserReport) {
  const { user, account } = report
  return {
    id: user.id, username: user.username, roles: user.roles, created_at: iso(user.createdAt),
    suspended: user.suspendedAt !== null, suspended_at: iso(user.suspendedAt),
    kudos: toKudos(account?.balance ?? 0), totals: totalsView(account),
    workers: report.workers.map(moderatedWorkerView), actions: report.actions.map(adminActionView),
  }
}
