/**
 * Kudos amounts: the API speaks decimal kudos with at most 3 decimals, the ledger
 * integer milli-kudos. Parsing goes through the decimal text, never through float math.
 */
import { BrokerError } from '../errors.js'

export const MILLI = 1000

const DECIMAL = /^(\d{1,15})(?:\.(\d{1,3}))?$/

/**
 * Parses a positive amount of kudos (a JSON number or a decimal string) into milli-kudos.
 * Throws `invalid_amount` for anything that is not a positive decimal with at most 3
 * decimals, and `amount_too_large` above `maxKudos`.
 */
export function parseKudos(input: unknown, maxKudos: number): number {
  let text: string
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new BrokerError('invalid_amount')
    text = String(input)
  } else if (typeof input === 'string') {
    text = input.trim()
  } else {
    throw new BrokerError('invalid_amount')
  }
  const match = DECIMAL.exec(text)
  if (!match) {
    // 1e21 and friends are numbers, but not amounts anyone means to send.
    if (/^\d+(\.\d+)?(e\+?\d+)?$/i.test(text) && Number(text) > maxKudos) throw new BrokerError('amount_too_large')
    throw new BrokerError('invalid_amount')
  }
  const milli = Number(match[1]) * MILLI + Number((match[2] ?? '').padEnd(3, '0'))
  if (milli <= 0) throw new BrokerError('invalid_amount')
  if (milli > Math.round(maxKudos * MILLI)) throw new BrokerError('amount_too_large')
  return milli
}

/** Milli-kudos to kudos, for the API. */
export function toKudos(milli: number): number {
  return milli / MILLI
}

/** Kudos (possibly fractional, from a formula) to whole milli-kudos, rounding half away from zero. */
export function toMilli(kudos: number): number {
  return Math.sign(kudos) * Math.round(Math.abs(kudos) * MILLI)
}

/**
 * Milli-kudos as exact decimal text with three decimals (`-12.500`), for reports: integer
 * arithmetic, so a large total is never shown rounded.
 */
export function formatKudos(milli: number): string {
  const sign = milli < 0 ? '-' : ''
  const abs = Math.abs(milli)
  return `${sign}${Math.floor(abs / MILLI)}.${String(abs % MILLI).padStart(3, '0')}`
}
