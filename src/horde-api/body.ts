/**
 * Lenient readers for v2 bodies. AI Horde's parsers ignore fields they do not know and fill
 * defaults for the ones left out, and its programs rely on both (a bridge sends fields of
 * newer AI Horde versions; clients send image-only fields to the text route). So a v2 body is
 * read field by field: unknown fields are ignored, a known field of the wrong type is a 400
 * `BadRequest` naming it, and nothing is changed when one is refused.
 */
import { BrokerError } from '../errors.js'

export type Fields = Record<string, unknown>

function refuse(message: string, rc = 'BadRequest'): never {
  throw new BrokerError('validation_failed', message, { rc })
}

/** The body as an object (absent: empty). */
export function fieldsOf(body: unknown, where = 'body'): Fields {
  if (body === undefined || body === null) return {}
  if (typeof body !== 'object' || Array.isArray(body)) refuse(`The ${where} must be a JSON object`)
  return body as Fields
}

export function int(fields: Fields, name: string, fallback: number, min: number, max: number): number {
  const value = fields[name]
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value)) refuse(`${name} must be an integer`)
  if (value < min || value > max) refuse(`${name} must be between ${min} and ${max}`)
  return value
}

export function bool(fields: Fields, name: string, fallback: boolean): boolean {
  const value = fields[name]
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'boolean') refuse(`${name} must be true or false`)
  return value
}

export function text(fields: Fields, name: string, options: { max?: number } = {}): string | undefined {
  const value = fields[name]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') refuse(`${name} must be a string`)
  if (options.max !== undefined && value.length > options.max) refuse(`${name} must be at most ${options.max} characters`)
  return value
}

export function texts(fields: Fields, name: string, options: { maxItems: number; maxLength: number }): string[] {
  const value = fields[name]
  if (value === undefined || value === null) return []
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) refuse(`${name} must be a list of strings`)
  if (value.length > options.maxItems) refuse(`${name} may list at most ${options.maxItems} entries`)
  if (value.some((item: string) => item.length === 0 || item.length > options.maxLength)) refuse(`each of ${name} must be 1 to ${options.maxLength} characters`)
  return value as string[]
}
