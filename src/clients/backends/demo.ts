/**
 * The demo backend: deterministic text from the prompt, for tests and demos. It emits
 * `max_length` words (4 characters each with the space: one token apiece), optionally
 * pausing between them.
 */
import type { Backend } from './backend.js'

const WORDS = ['the', 'horde', 'kudo', 'text', 'flow', 'fast', 'wind', 'rain', 'moon', 'star', 'tree', 'song']

export function createDemoBackend(options: { delayMs?: number } = {}): Backend {
  return {
    name: 'demo',
    probe: async () => ({ state: 'up' }),
    async *generate(job, signal) {
      let seed = 0
      for (const ch of job.prompt) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0
      for (let i = 0; i < job.max_length; i++) {
        if (signal.aborted) return
        if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs))
        seed = (seed * 1103515245 + 12345) >>> 0
        const word = WORDS[seed % WORDS.length].padEnd(4, '.').slice(0, 3)
        yield `${word} `
      }
    },
  }
}
