/** `horde-admin`'s human output: one line per fact, tables padded to their widest cell. */
type Out = (line: string) => void

function table(rows: string[][], out: Out): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  for (const row of rows) out(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd())
}

export function printAction(result: { changed: boolean; action: { id: number } | null }, state: string, out: Out): void {
  out(result.changed ? `${state} (action ${result.action!.id})` : `${state} (already so: nothing changed)`)
}

export function printUser(user: any, out: Out): void {
  out(`${user.username} (id ${user.id}), since ${user.created_at}`)
  out(`  roles      ${user.roles.length ? user.roles.join(', ') : '(none)'}`)
  out(`  suspended  ${user.suspended ? `yes, since ${user.suspended_at}` : 'no'}`)
  out(`  kudos      ${user.kudos} (generation ${user.totals.earned_generation}, uptime ${user.totals.earned_uptime}, awarded ${user.totals.awarded}, spent ${user.totals.spent}, sent ${user.totals.sent}, received ${user.totals.received})`)
  out(`  workers    ${user.workers.length ? user.workers.map((w: any) => `${w.name}${w.trusted ? ' [trusted]' : ''}${w.paused ? ' [paused]' : ''}`).join(', ') : '(none)'}`)
  if (user.actions.length) {
    out('  recent actions:')
    for (const a of user.actions) out(`    #${a.id} ${a.at} ${a.actor}: ${a.action} ${a.target} (${a.reason})`)
  }
}

export function printWorkers(workers: any[], out: Out): void {
  if (workers.length === 0) return out('(no workers)')
  table([['name', 'owner', 'trusted', 'paused', 'jobs', 'tokens', 'earned', 'last seen'],
    ...workers.map((w) => [w.name, w.owner, w.trusted ? 'yes' : 'no', w.paused ? `yes: ${w.paused_reason}` : 'no', String(w.jobs), String(w.tokens), String(w.earned), w.last_seen_at ?? '-'])], out)
}

export function printActions(actions: any[], out: Out): void {
  if (actions.length === 0) return out('(no actions)')
  table([['id', 'at', 'actor', 'action', 'target', 'reason'],
    ...actions.map((a) => [String(a.id), a.at, a.actor, a.action + (a.details?.role ? ` ${a.details.role}` : a.details?.amount !== undefined ? ` ${a.details.amount}` : ''), a.target, a.reason])], out)
}

export function printModels(models: Array<{ name: string; size_b: number | null; template: string | null }>, out: Out): void {
  if (models.length === 0) return out('(no models)')
  table([['model', 'size (B)', 'chat template'], ...models.map((m) => [m.name, String(m.size_b ?? '-'), m.template ?? '-'])], out)
}

export function printAudit(where: string, report: any, out: Out): void {
  out(`ledger audit of ${where}: ${report.users} users, ${report.entries} entries, minted ${report.minted / 1000} kudos, sum of balances ${report.sumBalances / 1000} kudos`)
  if (report.ok) return out('OK: balances, entries, settlements and transfers agree with the postings.')
  out(`FAILED: ${report.problems.length} problem(s):`)
  for (const problem of report.problems) out(`  - ${problem}`)
}
