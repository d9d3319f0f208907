/**
 * What anything thrown while answering a request becomes: a coded `BrokerError`. Shared by the
 * app's JSON error handler and the pages' HTML one, so both answer one error the same way.
 */
import { ERRORS, BrokerError, isBrokerError, type ErrorCode } from '../errors.js'

/** Maps anything thrown in a route to a coded error; 5xx messages are never shown. */
export function toBrokerError(error: Error & { code?: string; statusCode?: number; validation?: unknown }): BrokerError {
  if (isBrokerError(error)) return error
  if (error.validation) return new BrokerError('validation_failed', error.message)
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BrokerError('invalid_json', error.message)
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BrokerError('payload_too_large')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BrokerError('unsupported_media_type')
    case 'FST_ERR_RATE_LIMIT':
      return new BrokerError('too_many_requests', error.message)
  }
  if (error instanceof SyntaxError) return new BrokerError('invalid_json', error.message)
  const status = error.statusCode ?? 500
  if (status === 429) return new BrokerError('too_many_requests', error.message)
  if (status >= 400 && status < 500) {
    const code = (Object.keys(ERRORS) as ErrorCode[]).find((c) => ERRORS[c].status === status) ?? 'bad_request'
    return new BrokerError(code, error.message)
  }
  return new BrokerError('internal')
}
