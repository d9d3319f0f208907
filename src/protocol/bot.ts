/**
 * The bot channel (`/v1/bot`), protocol version 1: every frame a bot may send and every
 * frame it may receive, each defined once here. The decoder, the session's types and
 * docs/protocol-bot.md all come from these schemas.
 *
 * Bot -> server: commands, each with a request `id`, each answered exactly once by a
 * `result` frame or an `error` frame carrying that `id`. Server -> bot, unasked: one
 * `ready` frame on open, and `event` frames after `subscribe`.
 */
import { PublicUser, Totals } from './views.js'
import { Type, type Static, type TLiteral, type TObject, type TSchema } from '@sinclair/typebox'
import type { Category } from '../ledger/ledger.js'
import { MAX_IDEMPOTENCY_KEY_CHARS, MAX_MEMO_CHARS } from '../ledger/transfers.js'
import { createDecoder, PROTOCOL_VERSION, RequestId } from './envelope.js'

/** Kudos: a JSON number or a decimal string, > 0, at most 3 decimals (checked by the transfer rule). */
const Amount = Type.Union([Type.Number(), Type.String({ maxLength: 40 })], { description: 'Kudos, > 0, at most 3 decimals' })
/** A user: username, or numeric id. */
const UserRef = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer({ minimum: 0 })], { description: 'Username or numeric user id' })
const Id = RequestId

function command<T extends string, P extends Record<string, TSchema>>(type: T, properties: P) {
  return Type.Object({ type: Type.Literal(type), id: Id, ...properties }, { additionalProperties: false })
}

// ---- bot -> server ---------------------------------------------------------------------

/** Send kudos, under the same rules and idempotency keys as `POST /v1/kudos/transfers`. Needs the `transfer` scope. */
export const TransferCommand = command('transfer', {
  to: UserRef,
  amount: Amount,
  /** Chosen by the bot; a retry with the same key and content moves nothing. Shared with REST's Idempotency-Key. */
  idempotencyKey: Type.String({ minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_CHARS }),
  memo: Type.Optional(Type.String({ maxLength: MAX_MEMO_CHARS })),
})
/** The bot's own balance. */
export const BalanceCommand = command('balance', {})
/** The bot's own account: balance, totals by category, roles, the key's scopes. */
export const AccountCommand = command('account', {})
/** The bot's own ledger postings, newest first; page with `before` = the previous answer's `next_before`. */
export const LedgerCommand = command('ledger', {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  before: Type.Optional(Type.Integer({ minimum: 1 })),
})
/** A user's public fields, by name or id. */
export const FindUserCommand = command('find_user', { user: UserRef })
/** Start receiving `event` frames for the bot's own account. */
export const SubscribeCommand = command('subscribe', {})
/** Stop receiving `event` frames. */
export const UnsubscribeCommand = command('unsubscribe', {})

export const BotCommandSchemas = {
  transfer: TransferCommand,
  balance: BalanceCommand,
  account: AccountCommand,
  ledger: LedgerCommand,
  find_user: FindUserCommand,
  subscribe: SubscribeCommand,
  unsubscribe: UnsubscribeCommand,
} as const

export type BotCommand = { [K in keyof typeof BotCommandSchemas]: Static<(typeof BotCommandSchemas)[K]> }[keyof typeof BotCommandSchemas]
export type BotCommandType = BotCommand['type']

/** Decodes one incoming frame into a typed command, or a coded error frame. */
export const decodeBotCommand = createDecoder<BotCommand>(BotCommandSchemas)

// ---- server -> bot: results --------------------------------------------------------------

const UserName = Type.Object({ id: Type.Integer(), username: Type.String() })
const Entry = Type.Object({
  id: Type.Integer({ description: 'Ledger entry id' }),
  posting_id: Type.Integer(),
  kind: Type.String({ description: 'generation | transfer | uptime | award' }),
  category: Type.String({ description: 'generation | uptime | spent | sent | received | awarded | unfunded' }),
  amount: Type.Number({ description: 'Signed kudos' }),
  counterparty_id: Type.Union([Type.Integer(), Type.Null()]),
  ref: Type.Union([Type.String(), Type.Null()]),
  memo: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
})

export const BotResultSchemas = {
  transfer: Type.Object({
    id: Type.Integer({ description: 'Transfer id' }),
    from: UserName,
    to: UserName,
    amount: Type.Number(),
    memo: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String(),
    replayed: Type.Boolean({ description: 'True when this key was used before: nothing moved this time' }),
  }),
  balance: Type.Object({ id: Type.Integer(), username: Type.String(), kudos: Type.Number() }),
  account: Type.Object({ ...PublicUser.properties, totals: Totals, scopes: Type.Array(Type.String()) }),
  ledger: Type.Object({ entries: Type.Array(Entry), next_before: Type.Union([Type.Integer(), Type.Null()]) }),
  find_user: PublicUser,
  subscribe: Type.Object({ subscribed: Type.Literal(true) }),
  unsubscribe: Type.Object({ subscribed: Type.Literal(false) }),
} as const satisfies Record<BotCommandType, TSchema>

export type BotResults = { [K in BotCommandType]: Static<(typeof BotResultSchemas)[K]> }

function resultFrame<K extends BotCommandType>(command: K): TObject<{ type: TLiteral<'result'>; id: typeof Id; command: TLiteral<K>; result: (typeof BotResultSchemas)[K] }> {
  return Type.Object({ type: Type.Literal('result'), id: Id, command: Type.Literal(command), result: BotResultSchemas[command] })
}

/** `{ type: 'result', id, command, result }`: the answer to one command. */
export const ResultFrame = Type.Union((Object.keys(BotResultSchemas) as BotCommandType[]).map(resultFrame))
export type ResultFrame = { [K in BotCommandType]: { type: 'result'; id: RequestId; command: K; result: BotResults[K] } }[BotCommandType]

// ---- server -> bot: unasked ------------------------------------------------------------

/** Sent once when the socket opens: who the bot is and the limits it runs under. */
export const ReadyFrame = Type.Object({
  type: Type.Literal('ready'),
  protocol: Type.Literal(PROTOCOL_VERSION),
  user: UserName,
  scopes: Type.Array(Type.String()),
  limits: Type.Object({
    max_in_flight: Type.Integer({ description: 'Commands accepted but not yet answered, per socket' }),
    commands_per_second: Type.Number({ description: 'Sustained commands per second, per API key' }),
    burst: Type.Integer({ description: 'Commands per key allowed at once after a quiet spell' }),
  }),
})
export type ReadyFrame = Static<typeof ReadyFrame>

/** What happened to the bot's account; one per ledger posting, after it committed. */
export const EVENT_OF_CATEGORY = {
  received: 'kudos_received',
  sent: 'kudos_sent',
  uptime: 'uptime_credited',
  spent: 'generation_paid',
  generation: 'generation_earned',
  awarded: 'kudos_awarded',
  // Only the system account of unfunded rewards has these postings, and it has no key.
  unfunded: 'unfunded_credited',
} as const satisfies Record<Category, string>
export type BotEventName = (typeof EVENT_OF_CATEGORY)[Category]

export const EventFrame = Type.Object({
  type: Type.Literal('event'),
  event: Type.Union(Object.values(EVENT_OF_CATEGORY).map((name) => Type.Literal(name))),
  entry_id: Type.Integer(),
  amount: Type.Number({ description: 'Signed kudos: negative for sent and paid' }),
  balance: Type.Number({ description: 'The balance right after this posting' }),
  counterparty: Type.Union([UserName, Type.Null()]),
  memo: Type.Union([Type.String(), Type.Null()]),
  ref: Type.Union([Type.String(), Type.Null()], { description: 'The entry\'s reference: a request id, an uptime batch, sender:idempotency-key' }),
  at: Type.String(),
})
export type EventFrame = Omit<Static<typeof EventFrame>, 'event'> & { event: BotEventName }

/** The envelope's error frame, plus what a bot can act on. */
export const BotErrorFrame = Type.Object({
  type: Type.Literal('error'),
  id: Type.Optional(Id),
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  retry_after_ms: Type.Optional(Type.Integer({ minimum: 0, description: 'With too_many_requests: when one more command will be accepted' })),
})
export type BotErrorFrame = Static<typeof BotErrorFrame>

/** Every frame the server sends on the bot channel. */
export const BotServerFrame = Type.Union([ReadyFrame, ResultFrame, EventFrame, BotErrorFrame])
