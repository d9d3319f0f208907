/**
 * The worker's settings: a YAML file in the shape AI Horde volunteers know from
 * bridgeData.yaml (`horde_url`, `api_key`, `worker_name`, `models_to_serve`, `max_length`,
 * `max_context_length`, `max_threads`, `priority_usernames`, `kai_url`), then the flags,
 * which win. Keys this worker does not use (bridgeData has many) are reported, not refused.
 */
import fs from 'node:fs'
import { parse } from 'yaml'
import { UsageError } from '../cli/command.js'

/** Settings after the file and the flags, before defaults. */
export interface WorkerSettings {
  url?: string
  key?: string
  name?: string
  models?: string[]
  maxLength?: number
  maxContextLength?: number
  threads?: number
  priorityUsers?: string[]
  backend?: string
  backendUrl?: string
  backendKey?: string
  backendModel?: string
  delayMs?: number
}

/** YAML key → setting, and the kind of value it takes. */
const KEYS: Record<string, [keyof WorkerSettings, 'string' | 'list' | 'int']> = {
  horde_url: ['url', 'string'],
  api_key: ['key', 'string'],
  worker_name: ['name', 'string'],
  models_to_serve: ['models', 'list'],
  max_length: ['maxLength', 'int'],
  max_context_length: ['maxContextLength', 'int'],
  max_threads: ['threads', 'int'],
  priority_usernames: ['priorityUsers', 'list'],
  backend: ['backend', 'string'],
  kai_url: ['backendUrl', 'string'],
  backend_url: ['backendUrl', 'string'],
  backend_key: ['backendKey', 'string'],
  backend_model: ['backendModel', 'string'],
  delay_ms: ['delayMs', 'int'],
}

/** Reads a config file; returns the settings and the keys it ignored. */
export function readConfigFile(file: string): { settings: WorkerSettings; ignored: string[] } {
  let doc: unknown
  try {
    doc = parse(fs.readFileSync(file, 'utf8'))
  } catch (error) {
    throw new UsageError(`cannot read the config file ${file}: ${(error as Error).message.split('\n')[0]}`)
  }
  if (doc === null || doc === undefined) return { settings: {}, ignored: [] }
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${file}: expected key: value lines`)
  const settings: Record<string, unknown> = {}
  const ignored: string[] = []
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    const spec = KEYS[name]
    if (!spec) { ignored.push(name); continue }
    if (value === null || value === undefined) continue
    const [field, kind] = spec
    if (kind === 'int') {
      if (!Number.isSafeInteger(value) || (value as number) < (field === 'delayMs' ? 0 : 1)) throw new UsageError(`${file}: ${name} must be a positive integer, got ${JSON.stringify(value)}`)
      settings[field] = value
    } else if (kind === 'list') {
      const list = typeof value === 'string' ? [value] : value
      if (!Array.isArray(list) || list.some((item) => typeof item !== 'string' || item === '')) throw new UsageError(`${file}: ${name} must be a list of names`)
      settings[field] = list
    } else {
      if (typeof value !== 'string' && typeof value !== 'number') throw new UsageError(`${file}: ${name} must be text`)
      settings[field] = String(value)
    }
  }
  return { settings: settings as WorkerSettings, ignored }
}

/** The flags' settings over the file's: a flag given wins, a flag not given leaves the file's value. */
export function mergeSettings(file: WorkerSettings, flags: WorkerSettings): WorkerSettings {
  const merged: WorkerSettings = { ...file }
  for (const [name, value] of Object.entries(flags)) if (value !== undefined) (merged as Record<string, unknown>)[name] = value
  return merged
}
