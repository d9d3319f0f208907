/**
 * The client channel (`/v1/client`) and the REST generate body, protocol version 1.
 * docs/protocol.md describes the same messages.
 */
import { Type, type Static } from '@sinclair/typebox'
import { RequestId } from './envelope.js'

/** Sampler parameters are passed through to the worker untouched; only their size is bounded. */
export const SamplerParams = Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.Number(), Type.String({ maxLength: 1000 }), Type.Boolean(), Type.Null(), Type.Array(Type.Union([Type.Number(), Type.String({ maxLength: 200 })]), { maxItems: 64 })]), { maxProperties: 64 })

export const GenerateBody = Type.Object({
  prompt: Type.String({ minLength: 1 }),
  /** Models acceptable for this request; omitted or empty: any model. */
  models: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 20 })),
  max_length: Type.Optional(Type.Integer({ minimum: 1, default: 80 })),
  max_context_length: Type.Optional(Type.Integer({ minimum: 1, default: 1024 })),
  params: Type.Optional(SamplerParams),
  /** Only workers a moderator marked trusted may serve it (default false: any worker). */
  trusted_workers: Type.Optional(Type.Boolean({ default: false })),
}, { additionalProperties: false })
export type GenerateBody = Static<typeof GenerateBody>

export const IdempotencyKey = Type.String({ minLength: 1, maxLength: 200 })

export const Submit = Type.Object({
  type: Type.Literal('submit'),
  id: RequestId,
  ...GenerateBody.properties,
  /** A retry with the same key and content returns the first request instead of queueing another. */
  idempotency_key: Type.Optional(IdempotencyKey),
}, { additionalProperties: false })

export const RequestRef = Type.String({ minLength: 1, maxLength: 64 })

/** The last chunk a client holds: an attach with it resumes after it (chunk frames) instead of sending the text again. */
export const ChunkPlace = Type.Object({ attempt: Type.Integer({ minimum: 1 }), seq: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })
/** The secret an anonymous submission was answered with (not needed on the socket that submitted it, nor for a logged-in requester). */
export const Capability = Type.String({ minLength: 1, maxLength: 64 })
export const Attach = Type.Object({ type: Type.Literal('attach'), id: RequestId, request: RequestRef, after: Type.Optional(ChunkPlace), capability: Type.Optional(Capability) }, { additionalProperties: false })
export const Cancel = Type.Object({ type: Type.Literal('cancel'), id: RequestId, request: RequestRef, capability: Type.Optional(Capability) }, { additionalProperties: false })

export type ClientMessage = Static<typeof Submit> | Static<typeof Attach> | Static<typeof Cancel>

export const clientSchemas = { submit: Submit, attach: Attach, cancel: Cancel }
