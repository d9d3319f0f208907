import type { ProbeResult } from './probe.js'

/** A text generator behind the reference worker: yields text pieces as they are made. */
export interface GenerateJob {
  prompt: string
  model: string
  max_length: number
  max_context_length: number
  params: Record<string, unknown>
}

export interface Backend {
  readonly name: string
  generate(job: GenerateJob, signal: AbortSignal): AsyncIterable<string>
  /** Is the backend up? Asked at start, after a failed job, and while it is down. */
  probe(signal: AbortSignal): Promise<ProbeResult>
}
