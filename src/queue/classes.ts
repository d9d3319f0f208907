/**
 * Request classes: BullMQ pops the head of a queue and cannot filter, so requests are
 * split into queues by what a worker must offer to serve them: the accepted models and a
 * length and context tier. A worker is eligible for a class when it serves one of the
 * models (or the class accepts any) and its limits reach the class's tiers; it then only
 * ever pops jobs it can serve. Tiers round a request up, so a worker never gets more than
 * it announced (a worker with max_length 450 serves classes up to the 400 tier). A request that
 * asks for trusted workers only is a class of its own, served only by workers a moderator
 * marked trusted.
 */
import { queueNameFor } from './keys.js'

// Dense where workers' limits usually are (80, 120, 200, 512...), so few requests round past them.
const LENGTH_TIERS = [16, 32, 48, 64, 80, 96, 100, 120, 128, 150, 160, 192, 200, 250, 256, 300, 320, 384, 400, 500, 512, 640, 768, 1000, 1024, 1280, 1536, 2000, 2048, 3072, 4096, 6144, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576]
const CONTEXT_TIERS = [256, 512, 1024, 1536, 2048, 2560, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 49152, 65536, 98304, 131072, 196608, 262144, 524288, 1048576, 2097152, 4194304, 10000000]

export interface RequestClass {
  /** Sorted accepted models; empty means any model. */
  models: string[]
  lengthTier: number
  contextTier: number
  /** Only trusted workers serve it (absent in classes stored before the option existed: false). */
  trusted?: boolean
  /** Stable text key of the class. */
  key: string
  /** BullMQ queue holding this class's waiting requests. */
  queue: string
}

export interface Capabilities {
  models: ReadonlySet<string>
  maxLength: number
  maxContextLength: number
  /** A moderator marked the worker trusted. */
  trusted?: boolean
}

function tierOf(value: number, tiers: number[]): number {
  for (const tier of tiers) if (tier >= value) return tier
  return tiers[tiers.length - 1]
}

export function classOf(models: readonly string[], maxLength: number, maxContextLength: number, trusted = false): RequestClass {
  const sorted = [...new Set(models)].sort()
  const lengthTier = tierOf(maxLength, LENGTH_TIERS)
  const contextTier = tierOf(maxContextLength, CONTEXT_TIERS)
  // Untrusted classes keep the key they had before the option existed.
  const key = `${sorted.length ? sorted.join('\u001f') : '*'}|L${lengthTier}|C${contextTier}${trusted ? '|T' : ''}`
  return trusted
    ? { models: sorted, lengthTier, contextTier, trusted, key, queue: queueNameFor(key) }
    : { models: sorted, lengthTier, contextTier, key, queue: queueNameFor(key) }
}

export function canServe(worker: Capabilities, cls: Pick<RequestClass, 'models' | 'lengthTier' | 'contextTier' | 'trusted'>): boolean {
  if (worker.maxLength < cls.lengthTier || worker.maxContextLength < cls.contextTier) return false
  if (cls.trusted === true && worker.trusted !== true) return false
  if (cls.models.length === 0) return true
  for (const model of cls.models) if (worker.models.has(model)) return true
  return false
}

/** The model a worker should run for a job of this class: the first accepted model it serves. */
export function modelFor(worker: { models: readonly string[] }, cls: Pick<RequestClass, 'models'>): string {
  if (cls.models.length === 0) return worker.models[0]
  return worker.models.find((m) => cls.models.includes(m)) ?? worker.models[0]
}

/** True when a request's own limits fit a worker (the class check already guarantees it). */
export function fits(worker: Capabilities, maxLength: number, maxContextLength: number): boolean {
  return maxLength <= worker.maxLength && maxContextLength <= worker.maxContextLength
}
