/**
 * The worker channel (`/v1/worker`), protocol version 1: every frame a worker may send,
 * defined once. docs/protocol.md describes the same messages.
 */
import { Type, type Static } from '@sinclair/typebox'
import { RequestId } from './envelope.js'

const ModelName = Type.String({ minLength: 1, maxLength: 200 })
export const JobId = Type.String({ minLength: 1, maxLength: 64 })

export const Announce = Type.Object({
  type: Type.Literal('announce'),
  id: Type.Optional(RequestId),
  /** Unique worker name; a reconnect with the same name replaces the old session. */
  name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f]+$' }),
  models: Type.Array(ModelName, { minItems: 1, maxItems: 20 }),
  max_length: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  max_context_length: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
  /** Jobs the worker runs at once. */
  threads: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, default: 1 })),
  /** Users served before everyone else (after the owner), in their submission order. */
  priority_usernames: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 100 })),
}, { additionalProperties: false })

/** What a worker announces, without the envelope: every field optional but the name (for helpers that fill defaults). */
export type AnnounceSpec = Partial<Omit<Static<typeof Announce>, 'type' | 'id'>> & { name: string }

export const Chunk = Type.Object({
  type: Type.Literal('chunk'),
  job: JobId,
  /** 0 for the first chunk of a job, then +1 each. */
  seq: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
  text: Type.String({ maxLength: 1_000_000 }),
}, { additionalProperties: false })

export const Done = Type.Object({
  type: Type.Literal('done'),
  job: JobId,
  /** Number of chunks sent; checked against what the broker relayed. */
  chunks: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false })

export const Fail = Type.Object({
  type: Type.Literal('fail'),
  job: JobId,
  reason: Type.Optional(Type.String({ maxLength: 1000 })),
}, { additionalProperties: false })

/** Maintenance: `on` takes no new jobs (running ones finish); `off` takes jobs again. */
export const Maintenance = Type.Object({
  type: Type.Literal('maintenance'),
  on: Type.Boolean(),
}, { additionalProperties: false })

export type WorkerMessage = Static<typeof Announce> | Static<typeof Chunk> | Static<typeof Done> | Static<typeof Fail> | Static<typeof Maintenance>

export const workerSchemas = { announce: Announce, chunk: Chunk, done: Done, fail: Fail, maintenance: Maintenance }
