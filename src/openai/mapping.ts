/**
 * An OpenAI request becomes a horde request: the prompt (a chat rendered by its template,
 * or the legacy prompt as it is), the accepted models, `max_length` and the context, and
 * the sampler params a KoboldAI-style worker reads (`temperature`, `top_p`,
 * `stop_sequence`, `sampler_seed`). Fields that would change the answer's shape (tools,
 * JSON modes, log-probabilities, several choices, images) are refused with a 400 naming
 * the field; tuning hints the horde has no equivalent for are ignored. docs/openai-api.md
 * lists both.
 */
import type { LimitsConfig } from '../config.js'
import { promptTokens } from '../economy/rewards.js'
import { BrokerError } from '../errors.js'
import type { GenerateBody } from '../protocol/client.js'
import type { Resolved } from './catalog.js'
import type { ChatBody, ChatMessage, CompletionBody } from './schemas.js'
import { templateNamed, type Turn } from './templates.js'

/** What the routes submit and how they shape the answer. */
export interface HordeCall {
  body: GenerateBody & { max_length: number; max_context_length: number }
  /** The caller's and the template's stop strings: the answer ends before the first one. */
  stops: string[]
  stream: boolean
  includeUsage: boolean
  /** Text the answer starts with (the legacy `echo`). */
  echo: string
  /** The prompt's tokens by the broker's count (`usage.prompt_tokens`). */
  promptTokens: number
}

export interface MappingContext {
  resolved: Resolved
  limits: Pick<LimitsConfig, 'maxLength' | 'maxContextLength'>
  /** `max_tokens` of a chat completion that sets none. */
  defaultMaxTokens: number
}

/** OpenAI's legacy completions default to 16 tokens. */
const LEGACY_DEFAULT_MAX_TOKENS = 16
/** The horde's default context, the floor of what a request asks for. */
const MIN_CONTEXT = 1024

function refuse(param: string, message: string, code = 'unsupported_parameter'): never {
  throw new BrokerError('validation_failed', message, { param, code })
}

const present = (value: unknown) => value !== undefined && value !== null

/** Refusals both endpoints share. */
function checkCommon(body: ChatBody | CompletionBody): void {
  if (present(body.n) && body.n !== 1) refuse('n', `n = ${body.n} is not supported: the horde runs one generation per request; send ${body.n} requests instead.`, 'unsupported_value')
  if (present(body.stream_options) && body.stream !== true) refuse('stream_options', "The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'invalid_value')
}

function checkChat(body: ChatBody): void {
  const tools = body.tools
  if (Array.isArray(tools) && tools.length > 0 && body.tool_choice !== 'none') refuse('tools', 'Tools (function calling) are not supported: horde workers return plain text.')
  const functions = body.functions
  if (Array.isArray(functions) && functions.length > 0 && body.function_call !== 'none') refuse('functions', 'Functions are not supported: horde workers return plain text.')
  const format = body.response_format as { type?: unknown } | null | undefined
  if (present(format) && format?.type !== 'text') refuse('response_format', `response_format ${JSON.stringify(format?.type)} is not supported: only plain text is.`)
  if (body.logprobs === true) refuse('logprobs', 'Log-probabilities are not supported: workers stream text only.')
  if (typeof body.top_logprobs === 'number' && body.top_logprobs > 0) refuse('top_logprobs', 'Log-probabilities are not supported: workers stream text only.')
  if (present(body.audio)) refuse('audio', 'Audio output is not supported: horde workers return text.')
  if (Array.isArray(body.modalities) && body.modalities.some((m) => m !== 'text')) refuse('modalities', 'Only the text modality is supported.')
  if (present(body.prediction)) refuse('prediction', 'Predicted outputs are not supported.')
  if (present(body.web_search_options)) refuse('web_search_options', 'Web search is not supported.')
}

function checkLegacy(body: CompletionBody): void {
  if (present(body.suffix) && body.suffix !== '') refuse('suffix', 'suffix (insertion) is not supported.')
  if (typeof body.best_of === 'number' && body.best_of > 1) refuse('best_of', 'best_of > 1 is not supported: the horde runs one generation per request.', 'unsupported_value')
  if (typeof body.logprobs === 'number' && body.logprobs > 0) refuse('logprobs', 'Log-probabilities are not supported: workers stream text only.')
}

/** A message's text: a string, or the concatenation of its text parts. */
function textOf(message: ChatMessage, index: number): string {
  const content = message.content
  if (content === undefined || content === null) return ''
  if (typeof content === 'string') return content
  return content.map((part, j) => {
    if (part.type === 'text' && typeof part.text === 'string') return part.text
    // An assistant's refusal part carries no text to continue from.
    if (part.type === 'refusal' && message.role === 'assistant') return ''
    return refuse(`messages[${index}].content[${j}].type`, `Content parts of type ${JSON.stringify(part.type)} are not supported: horde workers read text only.`, 'unsupported_value')
  }).join('')
}

/** The chat's turns, in order; `developer` counts as `system`. */
export function turnsOf(messages: readonly ChatMessage[]): Turn[] {
  return messages.map((message, i) => {
    switch (message.role) {
      case 'system':
      case 'developer':
        return { role: 'system', text: textOf(message, i) }
      case 'user':
      case 'assistant':
        return { role: message.role, text: textOf(message, i) }
      case 'tool':
      case 'function':
        return refuse(`messages[${i}].role`, `Messages of role ${message.role} answer tool calls, which the horde does not make.`, 'unsupported_value')
      default:
        return refuse(`messages[${i}].role`, `Invalid value for 'messages[${i}].role': ${JSON.stringify(message.role)} is not one of system, developer, user, assistant.`, 'invalid_value')
    }
  })
}

function stopsOf(stop: string | string[] | null | undefined): string[] {
  if (stop === undefined || stop === null) return []
  return typeof stop === 'string' ? [stop] : stop
}

/** Lengths, params and stops, shared by both endpoints once the prompt is known. */
function assemble(body: ChatBody | CompletionBody, prompt: string, maxTokens: number, stops: string[], ctx: MappingContext, promptParam: string): HordeCall {
  const param = 'max_completion_tokens' in body && present(body.max_completion_tokens) ? 'max_completion_tokens' : 'max_tokens'
  if (maxTokens > ctx.limits.maxLength) refuse(param, `${param} is ${maxTokens}; this horde allows at most ${ctx.limits.maxLength}.`, 'invalid_value')
  const tokens = promptTokens(prompt)
  const context = Math.max(MIN_CONTEXT, tokens + maxTokens)
  if (context > ctx.limits.maxContextLength) {
    refuse(promptParam, `The prompt (about ${tokens} tokens) and max_tokens (${maxTokens}) need a context of ${context} tokens; this horde allows at most ${ctx.limits.maxContextLength}.`, 'context_length_exceeded')
  }
  const params: Record<string, number | string[]> = {}
  if (present(body.temperature)) params.temperature = body.temperature!
  // The horde's smallest top_p; OpenAI's 0 means "only the likeliest tokens" as well.
  if (present(body.top_p)) params.top_p = Math.max(body.top_p!, 0.001)
  if (present(body.seed)) params.sampler_seed = body.seed!
  const allStops = [...new Set(stops)]
  if (allStops.length) params.stop_sequence = allStops
  return {
    body: { prompt, models: ctx.resolved.models, max_length: maxTokens, max_context_length: context, params },
    stops: allStops,
    stream: body.stream === true,
    includeUsage: body.stream === true && body.stream_options?.include_usage === true,
    echo: '',
    promptTokens: tokens,
  }
}

/** A chat completion request as a horde request. */
export function chatCall(body: ChatBody, ctx: MappingContext): HordeCall {
  checkCommon(body)
  checkChat(body)
  const template = templateNamed(ctx.resolved.template)
  const prompt = template.render(turnsOf(body.messages))
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? ctx.defaultMaxTokens
  return assemble(body, prompt, maxTokens, [...stopsOf(body.stop), ...template.stops], ctx, 'messages')
}

/** A legacy completion request as a horde request: the prompt goes to the worker as it is. */
export function completionCall(body: CompletionBody, ctx: MappingContext): HordeCall {
  checkCommon(body)
  checkLegacy(body)
  let prompt: unknown = body.prompt
  if (Array.isArray(prompt)) {
    if (prompt.length > 1) refuse('prompt', 'One prompt per request: the horde runs one generation per request.', 'unsupported_value')
    prompt = prompt[0]
  }
  if (typeof prompt !== 'string') refuse('prompt', 'The prompt must be a string: token arrays cannot be served by text workers.', 'invalid_value')
  if (prompt === '') refuse('prompt', 'The prompt is empty.', 'invalid_value')
  const call = assemble(body, prompt, body.max_tokens ?? LEGACY_DEFAULT_MAX_TOKENS, stopsOf(body.stop), ctx, 'prompt')
  if (body.echo === true) call.echo = prompt
  return call
}
