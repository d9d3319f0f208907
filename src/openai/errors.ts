/**
 * Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`. OpenAI's
 * clients read only that envelope (without it, the official SDK's errors carry no message),
 * and pick their error class by the HTTP status. Anything thrown while answering becomes a
 * coded `BrokerError` first (the app's own mapping), then this shape: the broker's status,
 * an OpenAI `type` for that status, and OpenAI's code where it has one for the same thing
 * (`invalid_api_key`, `model_not_found`, `rate_limit_exceeded`), else the broker's code.
 *
 * `x-should-retry: false` goes with errors a retry a second later cannot cure (the SDKs
 * retry 409, 429 and 5xx by default): no worker for the model, a conflict, a failed run.
 */
import type { ErrorCode } from '../errors.js'
import { toBrokerError } from '../http/error-answer.js'

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

/** An error ready to send: status, body, and whether a client should retry it. */
export interface OpenAiError {
  status: number
  body: OpenAiErrorBody
  /** False: send `x-should-retry: false`. */
  retry: boolean
}

/** The `type` OpenAI gives each class of status. */
function typeFor(status: number): string {
  if (status === 401) return 'invalid_request_error'
  if (status === 403) return 'permission_error'
  if (status === 429) return 'requests'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}

/** Broker codes that OpenAI names otherwise. */
const OPENAI_CODES: Partial<Record<ErrorCode, string>> = {
  unauthorized: 'invalid_api_key',
  key_revoked: 'invalid_api_key',
  unknown_model: 'model_not_found',
  too_many_requests: 'rate_limit_exceeded',
  too_many_bad_keys: 'rate_limit_exceeded',
  slow_down: 'rate_limit_exceeded',
}

const NOT_RETRIED = new Set<string>(['no_worker', 'idempotency_conflict', 'not_cancellable', 'request_cancelled', 'expired', 'attempts_exhausted'])

export function openAiError(status: number, message: string, code: string | null, param: string | null = null, type = typeFor(status)): OpenAiError {
  return { status, body: { error: { message, type, param, code } }, retry: !(code !== null && NOT_RETRIED.has(code)) }
}

/** `/messages/0/role` -> `messages[0].role`: the way OpenAI names a parameter. */
export function paramOf(instancePath: string, missing?: string): string | null {
  const parts = instancePath.split('/').filter(Boolean)
  if (missing) parts.push(missing)
  if (parts.length === 0) return null
  return parts.reduce((out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part), '')
}

type Thrown = Error & { code?: string; statusCode?: number; validation?: Array<{ instancePath?: string; message?: string; params?: { missingProperty?: string } }> }

/** Anything thrown while answering an OpenAI route, in OpenAI's shape. 5xx messages are never shown. */
export function toOpenAiError(error: Thrown): OpenAiError {
  if (error.validation?.length) {
    const first = error.validation[0]
    const missing = first.params?.missingProperty
    const param = paramOf(first.instancePath ?? '', missing)
    const message = missing ? `Missing required parameter: '${param}'.` : `Invalid value for '${param ?? 'body'}': ${first.message ?? 'invalid'}.`
    return openAiError(400, message, missing ? 'missing_required_parameter' : 'invalid_value', param)
  }
  const coded = toBrokerError(error)
  const details = coded.details as { param?: string; code?: string } | undefined
  const code = details?.code ?? OPENAI_CODES[coded.code] ?? coded.code
  return openAiError(coded.status, coded.message, code, details?.param ?? null)
}

/** A failed request's event (`{code, message}`) as an error: expiry is a 503, other failures a 500. */
export function failureError(code: string, message: string): OpenAiError {
  return openAiError(code === 'expired' ? 503 : 500, message, code)
}
