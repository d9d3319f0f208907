/**
 * Errors in AI Horde's shape: `{"message", "rc"}` with AI Horde's HTTP statuses and return
 * codes (`rc`), which its programs branch on (a bridge drops a job on `InvalidJobID`, a
 * client asks for a key on `InvalidAPIKey`). Anything thrown while answering becomes a coded
 * `BrokerError` first (the app's own mapping, src/errors.ts being the one table of codes);
 * this module only renames: the `rc` (and `status`) a thrower put in `details` win, else the
 * table below, else `BadRequest` / `NotFound` / `Forbidden` by status. 5xx messages are never shown.
 */
import type { ErrorCode } from '../errors.js'
import { toBrokerError } from '../http/error-answer.js'

export interface HordeError {
  status: number
  body: { message: string; rc: string }
}

/** Broker codes as AI Horde names (and answers) them. */
const HORDE_CODES: Partial<Record<ErrorCode, { rc: string; status?: number }>> = {
  unauthorized: { rc: 'InvalidAPIKey' },
  key_revoked: { rc: 'InvalidAPIKey' },
  login_required: { rc: 'AnonForbidden' },
  insufficient_scope: { rc: 'Forbidden' },
  forbidden: { rc: 'Forbidden' },
  worker_name_taken: { rc: 'WrongCredentials', status: 403 },
  not_your_job: { rc: 'WrongCredentials', status: 403 },
  unknown_request: { rc: 'RequestNotFound' },
  unknown_user: { rc: 'UserNotFound' },
  unknown_job: { rc: 'InvalidJobID' },
  already_submitted: { rc: 'DuplicateGen', status: 400 },
  too_many_active: { rc: 'TooManyPrompts' },
  too_many_requests: { rc: 'TooManyRequests' },
  too_many_bad_keys: { rc: 'TooManyRequests' },
  insufficient_kudos: { rc: 'KudosTransferNotEnough', status: 400 },
  self_transfer: { rc: 'KudosTransferToSelf' },
  anonymous_transfer: { rc: 'KudosTransferFromAnon', status: 400 },
  invalid_amount: { rc: 'InvalidKudosTransferAmount' },
  amount_too_large: { rc: 'KudosValidationError' },
  idempotency_conflict: { rc: 'IdempotencyKeyConflict', status: 400 },
  not_cancellable: { rc: 'BadRequest', status: 400 },
  payload_too_large: { rc: 'TooLong', status: 400 },
  unavailable: { rc: 'MaintenanceMode' },
  internal: { rc: 'InternalServerError' },
}

function byStatus(status: number): string {
  if (status === 401) return 'InvalidAPIKey'
  if (status === 403) return 'Forbidden'
  if (status === 404) return 'NotFound'
  if (status === 429) return 'TooManyPrompts'
  if (status >= 500) return 'InternalServerError'
  return 'BadRequest'
}

type Thrown = Error & { code?: string; statusCode?: number; validation?: unknown }

/** Anything thrown while answering a v2 route, in AI Horde's shape. */
export function toHordeError(error: Thrown): HordeError {
  const coded = toBrokerError(error)
  const mapped = HORDE_CODES[coded.code]
  const details = coded.details as { rc?: unknown; status?: unknown } | undefined
  const status = typeof details?.status === 'number' ? details.status : mapped?.status ?? coded.status
  const rc = typeof details?.rc === 'string' ? details.rc : mapped?.rc ?? byStatus(status)
  const message = status >= 500 && coded.code === 'internal' ? 'Internal Server Error' : coded.message
  return { status, body: { message, rc } }
}
