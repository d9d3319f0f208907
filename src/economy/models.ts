/**
 * The operator's model registry: known model names and their size in billions of
 * parameters, with the bounds of plausible work (plausibility.ts). Workers cannot claim a
 * size, a speed or a context; unknown models earn the minimum.
 *
 * An entry is a size (`"m": 13`) or an object (`"m": { "size": 70, "max_tokens_per_second":
 * 60, "max_context_tokens": 16384 }`); what an object leaves out takes the default.
 */
import fs from 'node:fs'
import { defaultTokensPerSecond, DEFAULT_MAX_CONTEXT_TOKENS, type ModelLimits } from './plausibility.js'

export interface ModelRegistry {
  /** Size in billions of parameters, or undefined for a model the operator does not list. */
  sizeOf(model: string): number | undefined
  /** The bounds of plausible work on `model` (defaults for a model the registry does not list). */
  limitsOf(model: string): ModelLimits
  readonly names: string[]
  /**
   * The chat template the operator names for a model (the OpenAI-compatible endpoint renders
   * chat messages with it): an exact entry of `templates` first, then the first pattern that
   * matches; undefined when none does.
   */
  templateOf(model: string): string | undefined
  /** Every template name the `templates` section uses (checked against the table at start-up). */
  readonly templateNames: ReadonlySet<string>
}

export function loadModelRegistry(file: string): ModelRegistry {
  let parsed: unknown
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (error) {
    throw new Error(`Cannot read the model registry ${file} (MODELS_FILE): ${(error as Error).message}`)
  }
  const models = (parsed as { models?: unknown })?.models
  if (!models || typeof models !== 'object') throw new Error(`The model registry ${file} (MODELS_FILE) needs a "models" object of name: size in billions`)
  const sizes = new Map<string, number>()
  const limits = new Map<string, ModelLimits>()
  for (const [name, entry] of Object.entries(models as Record<string, unknown>)) {
    const fields = typeof entry === 'object' && entry !== null && !Array.isArray(entry) ? entry as Record<string, unknown> : { size: entry }
    const size = fields.size
    if (typeof size !== 'number' || !(size > 0) || size > 10_000) throw new Error(`The model registry ${file}: size of ${name} must be a positive number of billions`)
    for (const key of Object.keys(fields)) {
      if (!ENTRY_FIELDS.includes(key)) throw new Error(`The model registry ${file}: ${name} has an unknown field ${JSON.stringify(key)} (expected ${ENTRY_FIELDS.join(', ')})`)
    }
    sizes.set(name, size)
    limits.set(name, {
      maxTokensPerSecond: bound(file, name, fields, 'max_tokens_per_second', defaultTokensPerSecond(size), 100_000),
      maxContextTokens: bound(file, name, fields, 'max_context_tokens', DEFAULT_MAX_CONTEXT_TOKENS, 10_000_000),
    })
  }
  const unknown: ModelLimits = { maxTokensPerSecond: defaultTokensPerSecond(undefined), maxContextTokens: DEFAULT_MAX_CONTEXT_TOKENS }
  const { templateOf, templateNames } = parseTemplates(file, (parsed as { templates?: unknown }).templates)
  return { sizeOf: (model) => sizes.get(model), limitsOf: (model) => limits.get(model) ?? unknown, names: [...sizes.keys()], templateOf, templateNames }
}

/** The fields an object entry may have. */
const ENTRY_FIELDS = ['size', 'max_tokens_per_second', 'max_context_tokens']

/** An optional positive bound of an entry, or its default. */
function bound(file: string, name: string, fields: Record<string, unknown>, key: string, fallback: number, max: number): number {
  const value = fields[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || value > max) throw new Error(`The model registry ${file}: ${key} of ${name} must be a positive number (at most ${max})`)
  return value
}

/** A template's name: what the OpenAI endpoint's template table is keyed by. */
const TEMPLATE_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/

/**
 * The optional `templates` object: model name or pattern -> template name. A `*` in a key
 * matches any run of characters, case-insensitively (`*llama-3*`); keys starting with `$`
 * are comments. Exact names win over patterns; patterns are tried in the file's order.
 */
function parseTemplates(file: string, raw: unknown): Pick<ModelRegistry, 'templateOf' | 'templateNames'> {
  if (raw === undefined) return { templateOf: () => undefined, templateNames: new Set() }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`The model registry ${file}: "templates" must be an object of model name or pattern: template name`)
  const exact = new Map<string, string>()
  const patterns: Array<{ test: RegExp; template: string }> = []
  for (const [key, template] of Object.entries(raw as Record<string, unknown>)) {
    if (key.startsWith('$')) continue
    if (typeof template !== 'string' || !TEMPLATE_NAME.test(template)) throw new Error(`The model registry ${file}: template of ${key} must be a template name (lower-case letters, digits, -)`)
    if (!key.includes('*')) {
      exact.set(key, template)
      continue
    }
    const source = key.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')
    patterns.push({ test: new RegExp(`^${source}$`, 'i'), template })
  }
  return {
    templateOf: (model) => exact.get(model) ?? patterns.find((p) => p.test.test(model))?.template,
    templateNames: new Set([...exact.values(), ...patterns.map((p) => p.template)]),
  }
}
