/**
 * `/playground`: a prompt, one of the models served now (with its workers and ETA), sampler
 * settings and context length, the most it can cost before sending, and the text streaming
 * in over `/v1/client` (playground.js).
 */
import { formatDuration, html } from '../html.js'
import type { ModelPageRow } from '../horde-view.js'
import { layout, type PageViewer } from '../layout.js'

export interface PlaygroundLimits {
  maxLength: number
  maxContextLength: number
}

/** Sampler settings offered, with AI Horde's usual defaults; passed to the worker as `params`. */
const SAMPLERS: Array<{ name: string; label: string; value: number; min: number; max: number; step: number; hint: string }> = [
  { name: 'temperature', label: 'Temperature', value: 0.7, min: 0, max: 5, step: 0.01, hint: 'Temperature is a number from 0 to 5 (higher: more surprising text).' },
  { name: 'top_p', label: 'Top p', value: 0.92, min: 0.001, max: 1, step: 0.001, hint: 'Top p is a number from 0.001 to 1.' },
  { name: 'top_k', label: 'Top k', value: 100, min: 0, max: 100, step: 1, hint: 'Top k is a whole number from 0 to 100 (0: off).' },
  { name: 'rep_pen', label: 'Repetition penalty', value: 1.1, min: 1, max: 3, step: 0.01, hint: 'Repetition penalty is a number from 1 to 3.' },
]

function modelOption(m: ModelPageRow): ReturnType<typeof html> {
  const eta = m.etaSeconds === null ? '' : `, about ${formatDuration(m.etaSeconds)}`
  return html`<option value="${m.name}" data-eta="${m.etaSeconds ?? ''}">${m.name} (${m.workers} ${m.workers === 1 ? 'worker' : 'workers'}${eta})</option>`
}

export function playgroundPage(viewer: PageViewer, served: ModelPageRow[], limits: PlaygroundLimits): string {
  const length = Math.min(120, limits.maxLength)
  const context = Math.min(2048, limits.maxContextLength)
  return layout({
    title: 'Playground',
    nav: 'playground',
    viewer,
    scripts: ['common.js', 'forms.js', 'playground.js'],
    body: html`
<h1>Playground</h1>
<p class="muted">${viewer.username ? html`Requests are paid from <strong>${viewer.username}</strong>'s kudos.` : html`You are not logged in: requests go through the shared Anonymous account, served after everyone with kudos when the horde is busy.`}</p>
${served.length === 0 ? html`<div class="notice error" role="status" id="no-workers">No worker is online right now, so nothing can be generated yet. A request sent now waits until one comes. <a href="/run-a-worker">Run a worker</a>.</div>` : ''}
<form id="prompt-form" class="stack panel">
  <label>Prompt <textarea id="prompt" name="prompt" rows="6" required maxlength="100000" placeholder="Once upon a time"></textarea></label>
  <div class="row">
    <label>Model <select id="model" name="model"><option value="">Any model served now</option>${served.map(modelOption)}</select></label>
    <label>Max tokens <input id="max-length" name="max_length" type="number" min="1" max="${limits.maxLength}" value="${length}" required data-hint="${`Max tokens is a whole number from 1 to ${limits.maxLength}.`}"></label>
    <label>Context length <input id="max-context-length" name="max_context_length" type="number" min="1" max="${limits.maxContextLength}" value="${context}" required data-hint="${`Context length is a whole number from 1 to ${limits.maxContextLength} tokens.`}"></label>
  </div>
  <details id="samplers"><summary>Sampler settings</summary>
    <div class="row">${SAMPLERS.map((s) => html`<label>${s.label} <input name="${s.name}" data-param="${s.name}" type="number" min="${s.min}" max="${s.max}" step="${s.step}" value="${s.value}" data-hint="${s.hint}"></label>`)}</div>
  </details>
  <div class="row">
    <button type="submit" id="submit">Generate</button>
    <button type="button" id="cancel" class="danger" disabled>Cancel</button>
    <span id="estimate" class="muted" aria-live="polite"></span>
  </div>
</form>
<section class="panel">
  <div class="row"><h2>Output</h2><span id="state" class="badge" data-state="idle">idle</span></div>
  <p id="queue" class="muted" hidden></p>
  <pre id="output" aria-live="polite"></pre>
  <p id="summary" class="muted"></p>
</section>
`,
  })
}
