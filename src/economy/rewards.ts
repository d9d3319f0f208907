/**
 * The economy's formulas, as pure functions (table-tested in test/economy.test.ts).
 * Amounts here are kudos as floats; the ledger rounds them to milli-kudos once.
 */

/** Tokens counted by the broker from the text it relayed: ceil(chars/4), at least 1, at most max_length. */
export function countTokens(text: string, maxLength: number): number {
  return Math.min(Math.max(Math.ceil(text.length / 4), 1), Math.max(maxLength, 1))
}

/** Tokens of a prompt, by the same rule (no cap). */
export function promptTokens(prompt: string): number {
  return promptTokensOfLength(prompt.length)
}

/** Tokens of a prompt of `chars` characters (a cost estimate knows only the length). */
export function promptTokensOfLength(chars: number): number {
  return Math.max(Math.ceil(chars / 4), 1)
}

/** The context factor: clamp(1.2 + 2.2^log2(prompt_tokens/1024), 0.1, 30). */
export function contextFactor(promptTokenCount: number): number {
  const raw = 1.2 + Math.pow(2.2, Math.log2(Math.max(promptTokenCount, 1) / 1024))
  return Math.min(Math.max(raw, 0.1), 30)
}

/**
 * Kudos a finished job earns its worker's owner (and costs its requester):
 * `tokens * P/divisor * (max(P,13)/13)^0.2 * ctx`. A model the registry does not know
 * (`sizeB` undefined) earns the minimum: `ctx` alone.
 */
export function generationReward(tokens: number, sizeB: number | undefined, promptTokenCount: number, divisor = 125): number {
  const ctx = contextFactor(promptTokenCount)
  if (sizeB === undefined) return ctx
  return tokens * (sizeB / divisor) * Math.pow(Math.max(sizeB, 13) / 13, 0.2) * ctx
}

/**
 * Uptime reward for one full period (10 minutes by default) online:
 * `(base + 15*min(ctx_len,262144)/1024) * max(P/7, 0.25)`; unknown model: base-part times 0.5.
 */
export function uptimeRewardPerPeriod(maxContextLength: number, sizeB: number | undefined, base = 25): number {
  const contextPart = base + (15 * Math.min(maxContextLength, 262_144)) / 1024
  if (sizeB === undefined) return contextPart * 0.5
  return contextPart * Math.max(sizeB / 7, 0.25)
}
