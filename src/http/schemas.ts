/** REST schemas shared by several routes (TypeBox: one definition gives validation, types and OpenAPI). */
import { Type } from '@sinclair/typebox'
export { PublicUser, Totals } from '../protocol/views.js'

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }),
}, { $id: 'Error' })

/** Kudos are decimal numbers with at most 3 decimals, as a JSON number or string. */
export const Amount = Type.Union([Type.Number(), Type.String({ maxLength: 40 })], { description: 'Kudos, > 0, at most 3 decimals' })

export const Paging = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  before: Type.Optional(Type.Integer({ minimum: 1 })),
}, { additionalProperties: false })

export const errorResponses = {
  400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 415: ErrorBody, 429: ErrorBody,
}
