/**
 * The ledger audit: recomputes what the ledger stores from its append-only postings and
 * reports every place where the two disagree. It only reads, in one read snapshot: a live
 * broker keeps writing while the audit sees the ledger as of its first query. The store
 * runs it (src/store/sqlite/audit.ts), against the posting rules of posting-rules.ts.
 *
 * What it checks (amounts are integer milli-kudos; problems show them as kudos):
 * - every `balances` row: balance = sum of the user's postings, and each category total =
 *   sum of the absolute amounts of the user's postings in that category;
 * - the mint invariant: sum of balances = sum of `ledger_entries.minted`;
 * - every entry: a known kind, at least one posting, postings summing to its `minted`
 *   (0 for generation and transfer), each posting in a category and with a sign its kind makes;
 * - generation settlements: at most one entry per request; every done or cancelled request
 *   with kudos > 0 has exactly one, charging exactly `requests.kudos` to the requester and
 *   crediting exactly that much, to the worker's owner and (past the payer's credit line)
 *   the system account; none for a failed, expired, waiting or unknown request;
 * - unfunded credits: only the system account of unfunded rewards receives them;
 * - transfers: every row has its own transfer entry, with the ref and postings it implies,
 *   and every transfer entry has its row.
 */
import type { AuditReport, AuditStore } from '../store/ports.js'

export type { AuditReport }

export { AUDITED_TABLES, NotALedgerError } from '../store/people-ports.js'

/** Audits the ledger behind `store`; writes nothing. Throws `NotALedgerError` for a file that is not a broker database. */
export function auditLedger(store: Pick<AuditStore, 'run'>): Promise<AuditReport> {
  return store.run()
}
