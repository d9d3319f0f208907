/**
 * Which models the OpenAI endpoint offers and what a `model` field means. A `model` is a
 * horde model name or an operator-defined alias (`OPENAI_MODEL_ALIASES`; `any` by default,
 * which accepts any model). The list is what workers serve now, from every broker
 * process's registry, with a few horde facts as extra fields.
 *
 * The chat template is chosen here too: the prompt is rendered before a worker is chosen,
 * so it must suit every model the request accepts. When the registry gives all of them one
 * template, that one is used; when they disagree (an alias over several families, or `any`
 * over whatever is served now), the default template is.
 */
import type { OnlineWorker } from '../cluster/ports.js'
import type { ModelRegistry } from '../economy/models.js'
import { BrokerError } from '../errors.js'
import { DEFAULT_TEMPLATE, isTemplateName } from './templates.js'

export interface CatalogDeps {
  registry: Pick<ModelRegistry, 'sizeOf' | 'templateOf'>
  aliases: Readonly<Record<string, readonly string[]>>
  /** Workers connected to any live broker process. */
  onlineWorkers(): Promise<OnlineWorker[]>
}

/** One entry of `GET /v1/models`: OpenAI's four fields, then the horde's. */
export interface ModelEntry {
  id: string
  object: 'model'
  /** OpenAI gives a creation date; a horde model has none known, so 0. */
  created: number
  owned_by: string
  /** Workers serving it now. */
  workers: number
  /** Jobs those workers run at once. */
  threads: number
  /** The largest `max_tokens` one of them accepts. */
  max_tokens: number
  /** The longest context (prompt plus answer, in tokens) one of them accepts. */
  context_length: number
  /** For an alias: the models it stands for (`*`: any). */
  alias_of?: string[]
}

export interface Resolved {
  /** The horde request's accepted models; empty means any model. */
  models: string[]
  /** The chat template's name. */
  template: string
}

export interface Catalog {
  list(): Promise<ModelEntry[]>
  /** The entry of a model or alias served now, or undefined. */
  get(id: string): Promise<ModelEntry | undefined>
  /** What `model` means; throws `unknown_model` for a name nobody serves and the registry does not list. */
  resolve(model: string): Promise<Resolved>
}

function entry(id: string, workers: OnlineWorker[], aliasOf?: readonly string[]): ModelEntry {
  const out: ModelEntry = {
    id, object: 'model', created: 0, owned_by: 'horde', workers: workers.length,
    threads: workers.reduce((sum, w) => sum + w.threads, 0),
    max_tokens: workers.reduce((max, w) => Math.max(max, w.maxLength), 0),
    context_length: workers.reduce((max, w) => Math.max(max, w.maxContextLength), 0),
  }
  if (aliasOf) out.alias_of = aliasOf.length ? [...aliasOf] : ['*']
  return out
}

export function createCatalog(deps: CatalogDeps): Catalog {
  const { registry, aliases } = deps
  const isAlias = (name: string) => Object.hasOwn(aliases, name)
  const serving = (online: OnlineWorker[], models: readonly string[]) =>
    models.length === 0 ? online : online.filter((w) => w.models.some((m) => models.includes(m)))

  async function list(): Promise<ModelEntry[]> {
    const online = await deps.onlineWorkers()
    const names = [...new Set(online.flatMap((w) => w.models))].filter((name) => !isAlias(name)).sort()
    return [
      ...Object.entries(aliases).map(([alias, models]) => entry(alias, serving(online, models), models)),
      ...names.map((name) => entry(name, serving(online, [name]))),
    ]
  }

  async function get(id: string): Promise<ModelEntry | undefined> {
    const online = await deps.onlineWorkers()
    if (isAlias(id)) return entry(id, serving(online, aliases[id]), aliases[id])
    const workers = serving(online, [id])
    return workers.length ? entry(id, workers) : undefined
  }

  async function resolve(model: string): Promise<Resolved> {
    const online = await deps.onlineWorkers()
    const served = new Set(online.flatMap((w) => w.models))
    let models: string[]
    if (isAlias(model)) {
      models = [...aliases[model]]
    } else {
      if (!served.has(model) && registry.sizeOf(model) === undefined) {
        throw new BrokerError('unknown_model', `The model \`${model}\` does not exist: no worker serves it and the model registry does not list it (GET /v1/models lists what is served now)`, { param: 'model' })
      }
      models = [model]
    }
    const candidates = models.length ? models : [...served]
    const templates = new Set(candidates.map((m) => registry.templateOf(m) ?? DEFAULT_TEMPLATE))
    const only = templates.size === 1 ? [...templates][0] : DEFAULT_TEMPLATE
    return { models, template: isTemplateName(only) ? only : DEFAULT_TEMPLATE }
  }

  return { list, get, resolve }
}
