/**
 * What names a request, and what opens it.
 *
 * Every anonymous request shares one account, so "the requester" alone would let any anonymous caller read or cancel any anonymous request whose id it learnt. An
 * anonymous submission therefore gets a capability: 128 random bits, returned once with the
 * id. The store keeps only its SHA-256; viewing, following or cancelling the request needs
 * the capability itself (`X-Request-Capability` over REST, `capability` on the client socket).
 *
 * A submission with an idempotency key gets a capability derived from that key (as scoped to
 * the caller's address) and the request id, so a retry whose first answer was lost is given
 * the same capability again. Keys are then secrets of their client: use random ones.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * A request id: a UUID (RFC 9562 version 7), because clients of the AI Horde API validate ids
 * as UUIDs and read a request's status by its id alone. The first 48 bits are the creation
 * time in ms, so ids still sort by submission time (dispatch breaks ties across queues with
 * that order); the other 74 bits are random, so an id cannot be guessed.
 */
export function newRequestId(now = Date.now()): string {
  const bytes = randomBytes(16)
  bytes.writeUIntBE(Math.max(0, Math.floor(now)) % 2 ** 48, 0, 6)
  bytes[6] = 0x70 | (bytes[6] & 0x0f)
  bytes[8] = 0x80 | (bytes[8] & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** A capability for a new request: random, or derived from its scoped idempotency key. */
export function newCapability(request: string, scopedKey: string | null): string {
  if (scopedKey === null) return randomBytes(16).toString('base64url')
  return createHmac('sha256', scopedKey).update(`request-capability:${request}`).digest().subarray(0, 16).toString('base64url')
}

/** What the store keeps of a capability: its SHA-256, in hex. */
export function capabilityHash(capability: string): string {
  return createHash('sha256').update(capability).digest('hex')
}

/** True when `capability` is the one whose hash the request holds (compared in constant time). */
export function capabilityMatches(capability: string | undefined, hash: string): boolean {
  if (capability === undefined || capability.length === 0 || capability.length > 64) return false
  const given = Buffer.from(capabilityHash(capability), 'hex')
  const stored = Buffer.from(hash, 'hex')
  return given.length === stored.length && timingSafeEqual(given, stored)
}
