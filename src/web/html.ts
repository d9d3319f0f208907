/**
 * HTML from template literals, escaped by default: every `${value}` in an `html` template
 * is escaped unless it is itself `SafeHtml` (another `html` template, or an array of them).
 * Pages are built only from these, so text from users (names, memos, prompts) can never
 * become markup.
 */

/** Markup that is already safe: made by `html` or `raw`. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' }

/** Escapes text for an element body or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c])
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === null || value === undefined || value === false) return ''
  return escapeHtml(String(value))
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]
  return new SafeHtml(out)
}

/** Trusted markup written in this code base (never text from a request). */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup)
}

/** Kudos for people: at most 3 decimals, thousands grouped. */
export function formatKudos(kudos: number): string {
  return kudos.toLocaleString('en-US', { maximumFractionDigits: 3 })
}

/** A duration in seconds as `3d 4h`, `2h 5m`, `4m 10s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${m}m`
  if (m > 0) return `${m}m ${s % 60}s`
  return `${s}s`
}

/** A timestamp as `2026-11-25 19:40 UTC`. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
}
