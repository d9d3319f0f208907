/**
 * Shared JSON-schema validators. REST bodies and WebSocket frames go through `bodyAjv`:
 * no type coercion, no silently removed fields. Query strings and path parameters go
 * through `paramsAjv`, which coerces text to the declared types.
 */
import { Ajv, type ValidateFunction } from 'ajv'
import { BrokerError } from '../errors.js'

export const bodyAjv = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false, strict: false })
export const paramsAjv = new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, allErrors: false, strict: false })

/** Compiles a schema into a function that returns the typed value or throws `validation_failed`. */
export function compileChecker<T>(schema: object): (value: unknown) => T {
  const validate: ValidateFunction = bodyAjv.compile(schema)
  return (value) => {
    if (validate(value)) return value as T
    const first = validate.errors?.[0]
    const where = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : 'message'
    throw new BrokerError('validation_failed', `${where} ${first?.message ?? 'is invalid'}`)
  }
}
