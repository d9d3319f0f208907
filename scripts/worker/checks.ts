/**
 * Checks a new volunteer would want made before the first job: is each model name one the
 * broker's registry knows (an unlisted model earns the minimum; KoboldCpp reports names
 * such as `koboldcpp/LLaMA2-13B-Tiefighter.Q4_K_S`), and is the worker name already online.
 */

/** Lower-case, without an org prefix, a file extension or a quantization suffix. */
export function normalizeModel(name: string): string {
  let s = name.toLowerCase()
  s = s.replace(/^(koboldcpp|aphrodite|vllm)\//, '')
  s = s.replace(/\.(gguf|ggml|bin|safetensors)$/, '')
  s = s.replace(/[.\-_](q\d(_[a-z0-9]+)*|f16|fp16|bf16|awq|gptq|gguf|exl2)$/g, '')
  return s.replace(/[.\-_]+(q\d(_[a-z0-9]+)*|gguf|awq|gptq)$/g, '')
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const here = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = here
    }
  }
  return row[b.length]
}

/** The registered name closest to `name`, or undefined when none is close. */
export function closestModel(name: string, registered: readonly string[]): string | undefined {
  const wanted = normalizeModel(name)
  let best: { name: string; d: number } | undefined
  for (const candidate of registered) {
    const n = normalizeModel(candidate)
    const tail = n.split('/').pop()!
    const d = n === wanted || tail === wanted.split('/').pop() ? 0 : Math.min(distance(wanted, n), distance(wanted.split('/').pop()!, tail))
    if (!best || d < best.d) best = { name: candidate, d }
  }
  return best && best.d <= Math.max(3, Math.floor(wanted.length / 4)) ? best.name : undefined
}

/** Warnings about the announce, from the broker's public `/v1/status/models` and `/v1/status`. */
export async function preflight(url: string, name: string, models: readonly string[]): Promise<string[]> {
  const base = url.replace(/^ws/, 'http').replace(/\/+$/, '')
  const warnings: string[] = []
  try {
    const answer = await fetch(`${base}/v1/status/models`, { signal: AbortSignal.timeout(5000) })
    if (answer.ok) {
      const rows = ((await answer.json()) as { models: Array<{ name: string; registered: boolean }> }).models
      const registered = rows.filter((r) => r.registered).map((r) => r.name)
      for (const model of models) {
        if (registered.includes(model)) continue
        const close = closestModel(model, registered)
        warnings.push(`model ${model} is not in the broker's registry: it earns the minimum kudos${close ? `; did you mean ${close}? (set models_to_serve or --model)` : ''}`)
      }
    }
    const status = await fetch(`${base}/v1/status`, { signal: AbortSignal.timeout(5000) })
    if (status.ok) {
      const workers = ((await status.json()) as { workers: Array<{ name: string; owner: string }> }).workers
      const same = workers.find((w) => w.name === name)
      if (same) warnings.push(`a worker named ${name} is already online (owner ${same.owner}): connecting replaces it (4409) if it is yours; give each worker its own worker_name`)
    }
  } catch { /* the connection itself reports an unreachable broker */ }
  return warnings
}
