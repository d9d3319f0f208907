/**
 * The Anonymous account: a fixed id and name, so that every process, every test and every
 * store can name it without reading the database.
 */

/** The Anonymous account's id. */
export const ANONYMOUS_ID = 0
/** The Anonymous account's username. */
export const ANONYMOUS_NAME = 'Anonymous'
