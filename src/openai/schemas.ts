/**
 * The request bodies the OpenAI-compatible routes accept, as JSON schemas (checked by the
 * app's strict body validator). Only the fields the broker uses are typed; other fields are
 * let through, because OpenAI's clients send many optional ones (`user`, `metadata`, ...):
 * mapping.ts refuses the ones that would change the answer's shape and ignores the rest,
 * both as docs/openai-api.md lists. Most fields accept `null`, meaning "the default", as
 * OpenAI's API does.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]))

const TextPart = Type.Object({ type: Type.String({ maxLength: 64 }), text: Type.Optional(Type.String()) }, { additionalProperties: true })

export const ChatMessage = Type.Object({
  role: Type.String({ minLength: 1, maxLength: 64 }),
  /** A string, or parts of which only `text` ones can be served. Null for an assistant turn that called tools. */
  content: nullable(Type.Union([Type.String(), Type.Array(TextPart, { maxItems: 1000 })])),
  name: Type.Optional(Type.String({ maxLength: 256 })),
}, { additionalProperties: true })
export type ChatMessage = Static<typeof ChatMessage>

const Stop = nullable(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 4 })]))

/** The fields both endpoints share. */
const common = {
  model: Type.String({ minLength: 1, maxLength: 200 }),
  max_tokens: nullable(Type.Integer({ minimum: 1 })),
  temperature: nullable(Type.Number({ minimum: 0, maximum: 5 })),
  top_p: nullable(Type.Number({ minimum: 0, maximum: 1 })),
  n: nullable(Type.Integer({ minimum: 1 })),
  stop: Stop,
  seed: nullable(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
  stream: nullable(Type.Boolean()),
  stream_options: nullable(Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: true })),
}

export const ChatBody = Type.Object({
  ...common,
  messages: Type.Array(ChatMessage, { minItems: 1, maxItems: 10_000 }),
  /** The newer name of `max_tokens`; wins when both are set. */
  max_completion_tokens: nullable(Type.Integer({ minimum: 1 })),
}, { additionalProperties: true })
export type ChatBody = Static<typeof ChatBody> & Record<string, unknown>

export const CompletionBody = Type.Object({
  ...common,
  /** One prompt; arrays of one string are accepted, more (or token arrays) are refused in mapping.ts. */
  prompt: Type.Union([Type.String(), Type.Array(Type.Unknown(), { minItems: 1 }), Type.Null()]),
  echo: nullable(Type.Boolean()),
}, { additionalProperties: true })
export type CompletionBody = Static<typeof CompletionBody> & Record<string, unknown>
