/**
 * `horde-admin models check <file>`: loads a new registry file with the broker's own loader
 * (so what passes here also starts a broker) and says how it differs from the one in use.
 */
import fs from 'node:fs'
import { loadModelRegistry, type ModelRegistry } from '../../src/economy/models.js'

export interface RegistryCheck {
  ok: boolean
  file: string
  models: number
  added: string[]
  removed: string[]
  resized: Array<{ name: string; from: number; to: number }>
  lines: string[]
}

export async function checkRegistry(file: string, current: string | undefined): Promise<RegistryCheck> {
  const report: RegistryCheck = { ok: false, file, models: 0, added: [], removed: [], resized: [], lines: [] }
  let next: ModelRegistry
  try {
    next = loadModelRegistry(file)
  } catch (error) {
    report.lines.push(`FAILED: ${(error as Error).message}`)
    return report
  }
  report.ok = true
  report.models = next.names.length
  report.lines.push(`OK: ${file}: ${next.names.length} models`)
  const base = current ?? 'config/models.json'
  if (!fs.existsSync(base)) return report
  let old: ModelRegistry
  try {
    old = loadModelRegistry(base)
  } catch {
    return report
  }
  report.added = next.names.filter((name) => old.sizeOf(name) === undefined)
  report.removed = old.names.filter((name) => next.sizeOf(name) === undefined)
  report.resized = next.names.filter((name) => old.sizeOf(name) !== undefined && old.sizeOf(name) !== next.sizeOf(name))
    .map((name) => ({ name, from: old.sizeOf(name)!, to: next.sizeOf(name)! }))
  report.lines.push(`against ${base}: ${report.added.length} added, ${report.removed.length} removed, ${report.resized.length} resized`)
  for (const name of report.added) report.lines.push(`  + ${name} (${next.sizeOf(name)} B)`)
  for (const name of report.removed) report.lines.push(`  - ${name} (workers announcing it will earn the minimum)`)
  for (const r of report.resized) report.lines.push(`  ~ ${r.name}: ${r.from} B -> ${r.to} B`)
  return report
}
