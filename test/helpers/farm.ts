/**
 * Farming test helpers: workers that lie and workers that do not, on the raw worker socket,
 * and the formula the broker must pay by (computed here from the economy's own functions,
 * with the bounds the registry gives the model).
 */
import { loadModelRegistry } from '../../src/economy/models.js'
import { contextTokens } from '../../src/economy/plausibility.js'
import { generationReward, promptTokens } from '../../src/economy/rewards.js'
import { toMilli } from '../../src/economy/amounts.js'
import type { Broker } from '../../src/broker.js'
import type { Peer } from './ws.js'
import { sleep } from './harness.js'

/** The registry every test broker loads (MODELS_FILE's default). */
export const registry = loadModelRegistry(new URL('../../config/models.json', import.meta.url).pathname)

export const BIG = 'aphrodite/Llama-3-70B'
export const MID = 'koboldcpp/LLaMA2-13B-Tiefighter'

/**
 * Streams `text` as an honest worker of `tokensPerSecond` would: 4 tokens (16 characters)
 * per chunk, never ahead of that speed, then `done`. Returns the chunks sent.
 */
export async function streamAt(peer: Peer, job: string, text: string, tokensPerSecond: number): Promise<number> {
  const started = performance.now()
  let seq = 0
  for (let at = 0; at < text.length; at += 16) {
    const piece = text.slice(at, at + 16)
    // This chunk's tokens may not be sent before the speed allows them.
    const due = started + ((at + piece.length) / 4 / tokensPerSecond) * 1000
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    peer.send({ type: 'chunk', job, seq: seq++, text: piece })
  }
  peer.send({ type: 'done', job, chunks: seq })
  return seq
}

/** The formula's reward in milli-kudos for an honest delivery of `chars` on `model`. */
export function formulaMilli(options: { model: string; chars: number; prompt: string; maxLength: number; requestContext: number; workerContext: number }): number {
  const tokens = Math.min(Math.ceil(options.chars / 4), options.maxLength)
  const context = contextTokens(promptTokens(options.prompt), { request: options.requestContext, worker: options.workerContext, model: registry.limitsOf(options.model).maxContextTokens })
  return toMilli(generationReward(tokens, registry.sizeOf(options.model), context))
}

/** Milli-kudos a user earned by generation (uptime and awards left out). */
export async function earnedByGeneration(broker: Broker, userId: number): Promise<number> {
  return (await broker.services.ledger.account(userId))?.earnedGeneration ?? 0
}

/** Waits for the `settled` notice of `job` on the worker. */
export function settledOf(peer: Peer, job: string, timeoutMs = 15_000): Promise<{ tokens: number; kudos: number }> {
  return peer.next((f) => f.type === 'settled' && f.job === job, timeoutMs)
}
