/**
 * The operator's model registry: known model names and their size in billions of
 * parameters. Workers cannot claim a size; unknown models earn the minimum.
 */
import fs from 'node:fs'

export interface ModelRegistry {
  /** Size in billions of parameters, or undefined for a model the operator does not list. */
  sizeOf(model: string): number | undefined
  readonly names: string[]
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
  for (const [name, size] of Object.entries(models as Record<string, unknown>)) {
    if (typeof size !== 'number' || !(size > 0) || size > 10_000) throw new Error(`The model registry ${file}: size of ${name} must be a positive number of billions`)
    sizes.set(name, size)
  }
  return { sizeOf: (model) => sizes.get(model), names: [...sizes.keys()] }
}
