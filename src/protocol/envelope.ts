/**
 * The WebSocket envelope shared by the worker, client and bot channels (protocol version 1).
 *
 * - Every frame is a JSON text frame: an object with a string `type`.
 * - A command that gets a reply carries `id` (a string of 1-64 characters or a safe
 *   integer); its reply (result or `error`) carries the same `id`.
 * - Errors are `{ type: 'error', id?, code, message }` with a code from the error table.
 * - Close codes 4000-4399 mean "reconnect (with back-off)"; 4400-4499 mean "do not
 *   reconnect until something is fixed" (a key, a name, the client's code).
 */
import { Type } from '@sinclair/typebox'
import { ERRORS, type ErrorCode } from '../errors.js'
import { compileChecker } from './validate.js'

export const PROTOCOL_VERSION = 1

export const CloseCode = {
  /** The server is shutting down or restarting: reconnect. */
  GoingAway: 1001,
  /** A frame larger than the limit (sent by ws itself): fix the sender, then reconnect. */
  MessageTooBig: 1009,
  /** An unexpected server error: reconnect. */
  Internal: 1011,
  /** The server is draining (a restart or a scale-down): reconnect, to another process if there is one. */
  Restarting: 1012,
  /** A dependency is down: reconnect later. */
  TryAgainLater: 1013,
  /** The peer did not answer pings in time: reconnect. */
  HeartbeatTimeout: 4001,
  /** The peer stopped reading and its send buffer overflowed: reconnect and read faster. */
  SlowConsumer: 4002,
  /** Too many connections from this address: reconnect later. */
  TooManyConnections: 4029,
  /** Too many malformed frames: fix the client, do not reconnect blindly. */
  ProtocolViolation: 4400,
  /** The key is wrong or was revoked. */
  Unauthorized: 4401,
  /** The key's account or scope may not use this channel, or the worker name belongs to another user. */
  Forbidden: 4403,
  /** A newer session with the same worker name replaced this one. */
  Replaced: 4409,
} as const

export type CloseCodeName = keyof typeof CloseCode

/** True when a peer closed with this code should reconnect. */
export function shouldReconnect(code: number): boolean {
  return code === 1001 || code === 1006 || code === 1011 || code === 1012 || code === 1013 || (code >= 4000 && code < 4400)
}

export const RequestId = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })])
export type RequestId = string | number

export interface ErrorFrame {
  type: 'error'
  id?: RequestId
  code: ErrorCode
  message: string
}

export function errorFrame(code: ErrorCode, message?: string, id?: RequestId): ErrorFrame {
  const frame: ErrorFrame = { type: 'error', code, message: message ?? ERRORS[code].message }
  if (id !== undefined) frame.id = id
  return frame
}

/** The outcome of decoding one incoming frame. */
export type Decoded<T> = { ok: true; message: T } | { ok: false; error: ErrorFrame }

const Envelope = Type.Object({ type: Type.String({ minLength: 1, maxLength: 64 }), id: Type.Optional(RequestId) })
const checkEnvelope = compileChecker<{ type: string; id?: RequestId }>(Envelope)

/**
 * Builds the decoder of one channel from its message schemas, keyed by `type`. Each
 * incoming frame is parsed once, checked against its type's schema, and returned typed;
 * anything else becomes an error frame (never a silent drop).
 */
export function createDecoder<M extends { type: string }>(schemas: Record<M['type'], object>): (data: unknown, isBinary: boolean) => Decoded<M> {
  const checkers = new Map<string, (value: unknown) => unknown>()
  for (const [type, schema] of Object.entries(schemas) as Array<[string, object]>) checkers.set(type, compileChecker(schema))
  return (data, isBinary) => {
    if (isBinary) return { ok: false, error: errorFrame('bad_request', 'Binary frames are not supported; send JSON text') }
    let value: unknown
    try {
      value = JSON.parse(typeof data === 'string' ? data : String(data))
    } catch {
      return { ok: false, error: errorFrame('invalid_json') }
    }
    let envelope: { type: string; id?: RequestId }
    try {
      envelope = checkEnvelope(value)
    } catch {
      return { ok: false, error: errorFrame('validation_failed', 'A frame must be an object with a string type and an optional id') }
    }
    const check = checkers.get(envelope.type)
    if (!check) return { ok: false, error: errorFrame('unknown_type', `Unknown message type ${JSON.stringify(envelope.type)}`, envelope.id) }
    try {
      return { ok: true, message: check(value) as M }
    } catch (error) {
      return { ok: false, error: errorFrame('validation_failed', `${envelope.type}: ${(error as Error).message}`, envelope.id) }
    }
  }
}
