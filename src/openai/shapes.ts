/**
 * The objects OpenAI's clients parse, for both endpoints: chat (`chat.completion` and its
 * `chat.completion.chunk`s, whose choices carry a `delta`) and the legacy completions
 * (`text_completion`, whose streamed chunks have the same shape as the whole answer). The
 * id is the horde request's id behind OpenAI's prefix, so an answer can be looked up with
 * `GET /v1/generate/:id`; `created` and the id stay the same on every chunk.
 */

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
}

export type Finish = 'stop' | 'length'

/** Builds one answer's objects. */
export interface AnswerShape {
  /** The chunk that opens a stream (chat: the assistant's role), or null. */
  opening(model: string): object | null
  delta(model: string, text: string): object
  /** The last chunk with a choice: its finish reason. */
  closing(model: string, finish: Finish): object
  /** The usage chunk (`stream_options.include_usage`): no choices. */
  usage(model: string, usage: Usage): object
  /** The non-streaming answer. */
  whole(model: string, text: string, finish: Finish, usage: Usage): object
}

export interface ShapeOptions {
  kind: 'chat' | 'text'
  /** The horde request's id. */
  request: string
  /** Unix seconds. */
  created: number
  /** Chunks carry `usage: null` when a usage chunk will follow. */
  includeUsage: boolean
}

export function answerShape(options: ShapeOptions): AnswerShape {
  const { created, includeUsage } = options
  if (options.kind === 'chat') {
    const id = `chatcmpl-${options.request}`
    const chunk = (model: string, delta: object, finish: Finish | null) => ({
      id, object: 'chat.completion.chunk', created, model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    })
    return {
      opening: (model) => chunk(model, { role: 'assistant', content: '' }, null),
      delta: (model, text) => chunk(model, { content: text }, null),
      closing: (model, finish) => chunk(model, {}, finish),
      usage: (model, usage) => ({ id, object: 'chat.completion.chunk', created, model, choices: [], usage }),
      whole: (model, text, finish, usage) => ({
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finish }],
        usage,
      }),
    }
  }
  const id = `cmpl-${options.request}`
  const chunk = (model: string, text: string, finish: Finish | null) => ({
    id, object: 'text_completion', created, model,
    choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  })
  return {
    opening: () => null,
    delta: (model, text) => chunk(model, text, null),
    closing: (model, finish) => chunk(model, '', finish),
    usage: (model, usage) => ({ id, object: 'text_completion', created, model, choices: [], usage }),
    whole: (model, text, finish, usage) => ({ id, object: 'text_completion', created, model, choices: [{ text, index: 0, logprobs: null, finish_reason: finish }], usage }),
  }
}
