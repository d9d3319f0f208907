/**
 * What a worker name may be. Names are shown to everyone (pages, the AI Horde API, admin
 * views), so one must not pass for another: it must be in Unicode NFKC form (no full-width
 * or other compatibility look-alikes), hold no control or format characters (bidi overrides,
 * zero-width joiners), not start or end with white space, and not be a reserved word.
 */
import { BrokerError } from '../errors.js'

export const MAX_WORKER_NAME = 100
/** Words no worker and no new account may be named, compared case-insensitively. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(['admin', 'root', 'moderator', 'anonymous', 'horde'])
const RESERVED = RESERVED_NAMES

/** Whether `name` is one of the reserved words, in any case. */
export function isReservedName(name: string): boolean {
  return RESERVED.has(name.toLowerCase())
}
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u

/** Throws `invalid_worker_name` unless `name` may name a worker. */
export function checkWorkerName(name: string): void {
  const refuse = (why: string): never => { throw new BrokerError('invalid_worker_name', `Worker name refused: ${why}`) }
  if (name.length === 0 || name.length > MAX_WORKER_NAME) refuse(`it must be 1 to ${MAX_WORKER_NAME} characters`)
  if (HIDDEN.test(name)) refuse('it holds a control or invisible formatting character')
  if (name.normalize('NFKC') !== name) refuse('it is not in Unicode NFKC form (it holds a look-alike of another character)')
  if (/^\s|\s$/u.test(name)) refuse('it starts or ends with white space')
  if (isReservedName(name)) refuse(`"${name}" is reserved`)
}
