/**
 * The one table of error codes. Domain code throws `BrokerError` with a code from here;
 * only the edges translate: `http/` to a status, `gateway/` to an error frame or close code.
 */

export interface ErrorSpec {
  /** HTTP status when the error ends a REST request. */
  readonly status: number
  /** WebSocket close code when the error ends a session (null: an error frame, the socket stays open). */
  readonly close: number | null
  /** Default message, shown to the caller. */
  readonly message: string
}

export const ERRORS = {
  bad_request: { status: 400, close: null, message: 'The request is malformed' },
  invalid_json: { status: 400, close: null, message: 'The body is not valid JSON' },
  validation_failed: { status: 400, close: null, message: 'The request does not match the schema' },
  unknown_type: { status: 400, close: null, message: 'Unknown message type' },
  invalid_amount: { status: 400, close: null, message: 'Amount must be a positive number of kudos with at most 3 decimals' },
  amount_too_large: { status: 400, close: null, message: 'Amount is larger than allowed' },
  self_transfer: { status: 400, close: null, message: 'Cannot transfer kudos to yourself' },
  anonymous_transfer: { status: 403, close: null, message: 'The Anonymous account cannot send or receive transfers' },
  insufficient_kudos: { status: 402, close: null, message: 'Amount exceeds your positive balance' },
  idempotency_key_required: { status: 400, close: null, message: 'An Idempotency-Key is required' },
  idempotency_conflict: { status: 409, close: null, message: 'This idempotency key was used with different content' },
  unauthorized: { status: 401, close: 4401, message: 'Missing or invalid API key' },
  forbidden: { status: 403, close: 4403, message: 'Not allowed' },
  login_required: { status: 403, close: 4403, message: 'This needs a registered account, not the Anonymous one' },
  insufficient_scope: { status: 403, close: null, message: 'This API key\'s scope does not allow that' },
  key_revoked: { status: 401, close: 4401, message: 'The API key was revoked' },
  csrf_failed: { status: 403, close: null, message: 'The form expired or did not come from this site: reload the page and try again' },
  cross_origin: { status: 403, close: 4403, message: 'A socket opened with the session cookie must come from this site' },
  login_failed: { status: 400, close: null, message: 'Logging in with the provider failed: try again' },
  unknown_provider: { status: 404, close: null, message: 'That login provider is not configured here' },
  identity_taken: { status: 409, close: null, message: 'That login is already linked to another account' },
  not_found: { status: 404, close: null, message: 'Not found' },
  unknown_user: { status: 404, close: null, message: 'No such user' },
  unknown_request: { status: 404, close: null, message: 'No such generation request' },
  username_taken: { status: 409, close: null, message: 'That username is taken' },
  reserved_username: { status: 400, close: null, message: 'That username is reserved' },
  invalid_worker_name: { status: 400, close: null, message: 'That worker name is not allowed' },
  worker_name_taken: { status: 409, close: 4403, message: 'That worker name belongs to another user' },
  payload_too_large: { status: 413, close: 1009, message: 'Payload too large' },
  unsupported_media_type: { status: 415, close: null, message: 'Content-Type must be application/json' },
  too_many_requests: { status: 429, close: null, message: 'Too many requests' },
  too_many_bad_keys: { status: 429, close: null, message: 'Too many wrong API keys from this address: wait a minute' },
  too_many_active: { status: 429, close: null, message: 'Too many requests waiting or running' },
  too_many_unserved: { status: 429, close: null, message: 'Too many requests waiting for models no worker serves' },
  slow_down: { status: 429, close: null, message: 'Too many commands in flight' },
  too_many_connections: { status: 429, close: 4029, message: 'Too many connections from this address' },
  not_your_job: { status: 409, close: null, message: 'This job is not assigned to you' },
  bad_sequence: { status: 409, close: null, message: 'Chunk sequence number out of order' },
  not_cancellable: { status: 409, close: null, message: 'The request has already finished' },
  not_ready: { status: 409, close: null, message: 'Announce the worker before anything else' },
  no_such_model: { status: 400, close: null, message: 'The request names no model' },
  unknown_model: { status: 404, close: null, message: 'No worker serves that model and the model registry does not list it' },
  no_worker: { status: 503, close: null, message: 'No worker online can serve this request' },
  unavailable: { status: 503, close: 1013, message: 'A dependency is unavailable' },
  internal: { status: 500, close: 1011, message: 'Internal error' },
  unknown_job: { status: 404, close: null, message: 'No such job: it never existed, or its lease ran out and it went back to the queue' },
  already_submitted: { status: 409, close: null, message: 'This job was already submitted' },
  role_required: { status: 403, close: 4403, message: 'This needs a moderator or an admin' },
  user_suspended: { status: 403, close: 4403, message: 'This account is suspended by a moderator' },
  unknown_worker: { status: 404, close: null, message: 'No such worker' },
  bad_role: { status: 400, close: null, message: 'Only the moderator role is granted or revoked here; admins are named by ADMIN_USERS' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

/** An error whose `code` is in the table; its message is safe to show to the caller. */
export class BrokerError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown> | undefined
  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? ERRORS[code].message)
    this.name = 'BrokerError'
    this.code = code
    this.details = details
  }

  get status(): number {
    return ERRORS[this.code].status
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message }
  }
}

export function isBrokerError(error: unknown): error is BrokerError {
  return error instanceof BrokerError
}
