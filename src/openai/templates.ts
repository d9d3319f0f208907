/**
 * Chat templates: how a list of chat turns becomes the one prompt a horde worker completes.
 * Text models are trained on one turn format per family; the operator's model registry
 * (`templates` in MODELS_FILE) says which family a model belongs to, and this table holds
 * each family's format. The strings follow the formats the model families publish (and
 * the instruct presets front-ends ship); leading BOS tokens are left out, because the
 * workers' tokenizers add their own and a second one hurts.
 *
 * Every template also names stop strings: where a model that runs past its turn would start
 * writing the next one. The endpoint adds them to the request's stop sequences and cuts
 * the answer there.
 */

/** One chat turn, flattened to text. `system` covers OpenAI's `system` and `developer`. */
export interface Turn {
  role: 'system' | 'user' | 'assistant'
  text: string
}

export interface ChatTemplate {
  /** Renders the turns and the opening of the assistant's next turn. */
  render(turns: readonly Turn[]): string
  /** Strings that end the assistant's turn. */
  readonly stops: readonly string[]
}

/** The template used when the registry names none, or the candidate models disagree. */
export const DEFAULT_TEMPLATE = 'alpaca'

/**
 * For formats without a system role: system text is put at the head of the next user turn
 * (or of a user turn of its own when nothing follows it).
 */
function foldSystem(turns: readonly Turn[]): Turn[] {
  const out: Turn[] = []
  let pending: string[] = []
  for (const turn of turns) {
    if (turn.role === 'system') {
      pending.push(turn.text)
      continue
    }
    if (turn.role === 'user' && pending.length) {
      out.push({ role: 'user', text: [...pending, turn.text].join('\n\n') })
      pending = []
      continue
    }
    out.push(turn)
  }
  if (pending.length) out.push({ role: 'user', text: pending.join('\n\n') })
  return out
}

/** A format where every turn is `open(role) + text + close(role)`, then the assistant's opening. */
function turnTemplate(open: (role: Turn['role']) => string, close: (role: Turn['role']) => string, stops: string[], options: { systemRole: boolean }): ChatTemplate {
  return {
    stops,
    render(turns) {
      const list = options.systemRole ? turns : foldSystem(turns)
      return list.map((turn) => open(turn.role) + turn.text + close(turn.role)).join('') + open('assistant')
    },
  }
}

const ALPACA_HEADINGS = { system: '', user: '### Instruction:\n', assistant: '### Response:\n' } as const

/** Llama 2 chat: the system block lives inside the first `[INST]`; each exchange ends with `</s>`. */
function llama2(): ChatTemplate {
  return {
    stops: ['</s>', '[INST]'],
    render(turns) {
      let out = ''
      let system: string[] = []
      for (const turn of turns) {
        if (turn.role === 'system') system.push(turn.text)
        else if (turn.role === 'user') {
          const sys = system.length ? `<<SYS>>\n${system.join('\n\n')}\n<</SYS>>\n\n` : ''
          out += `${out ? '<s>' : ''}[INST] ${sys}${turn.text} [/INST]`
          system = []
        } else out += ` ${turn.text} </s>`
      }
      if (system.length) out += `${out ? '<s>' : ''}[INST] <<SYS>>\n${system.join('\n\n')}\n<</SYS>>\n\n [/INST]`
      return out
    },
  }
}

/** The formats, by the name the registry uses. */
export const TEMPLATES: Readonly<Record<string, ChatTemplate>> = Object.freeze({
  // Plain-text headings that instruction-tuned and base models alike follow: the default.
  alpaca: turnTemplate((role) => ALPACA_HEADINGS[role], () => '\n\n', ['### Instruction:'], { systemRole: true }),
  chatml: turnTemplate((role) => `<|im_start|>${role}\n`, () => '<|im_end|>\n', ['<|im_end|>', '<|im_start|>'], { systemRole: true }),
  llama2: llama2(),
  llama3: turnTemplate((role) => `<|start_header_id|>${role}<|end_header_id|>\n\n`, () => '<|eot_id|>', ['<|eot_id|>', '<|start_header_id|>'], { systemRole: true }),
  // Mistral v1-v3 (and Mixtral, Nemo): no system role.
  mistral: turnTemplate((role) => (role === 'user' ? '[INST] ' : ''), (role) => (role === 'user' ? '[/INST]' : '</s>'), ['</s>', '[INST]'], { systemRole: false }),
  metharme: turnTemplate((role) => ({ system: '<|system|>', user: '<|user|>', assistant: '<|model|>' })[role], () => '', ['<|user|>', '<|system|>', '</s>'], { systemRole: true }),
  // Gemma: no system role; the assistant's turns are the `model` role.
  gemma: turnTemplate((role) => `<start_of_turn>${role === 'assistant' ? 'model' : 'user'}\n`, () => '<end_of_turn>\n', ['<end_of_turn>', '<start_of_turn>'], { systemRole: false }),
})

export function isTemplateName(name: string): boolean {
  return Object.hasOwn(TEMPLATES, name)
}

/** The template of this name, or the default one. */
export function templateNamed(name: string | undefined): ChatTemplate {
  return name !== undefined && isTemplateName(name) ? TEMPLATES[name] : TEMPLATES[DEFAULT_TEMPLATE]
}
