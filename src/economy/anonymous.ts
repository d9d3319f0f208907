/**
 * The accounts with a fixed id and name (Anonymous, and the system account of unfunded
 * rewards), so that every process, every test and every store can name them without reading
 * the database.
 */

/** The Anonymous account's id. */
export const ANONYMOUS_ID = 0
/** The Anonymous account's username. */
export const ANONYMOUS_NAME = 'Anonymous'

/**
 * The system account of unfunded rewards: when a payer's debt passes its credit line, the
 * credit of the part its debt cannot fund is posted here (category `unfunded`) instead of to
 * the worker (payment.ts). Nobody holds a key to it; its balance is the debt beyond the lines.
 * The stores create it with the first payment that needs it.
 */
export const UNFUNDED_ID = -1
/** Its username: not one a person can register (a `:` is not allowed in usernames). */
export const UNFUNDED_NAME = 'horde:unfunded'

/** True for the accounts the broker keeps for itself (no transfers to them). */
export function isSystemAccount(userId: number): boolean {
  return userId === UNFUNDED_ID
}
