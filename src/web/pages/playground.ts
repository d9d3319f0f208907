/** `/playground`: a prompt, a model, and the text streaming in over `/v1/client` (playground.js). */
import { html } from '../html.js'
import { layout, type PageViewer } from '../layout.js'

export function playgroundPage(viewer: PageViewer, models: string[], maxLength: number): string {
  return layout({
    title: 'Playground',
    nav: 'playground',
    viewer,
    scripts: ['common.js', 'playground.js'],
    body: html`
<h1>Playground</h1>
<p class="muted">${viewer.username ? html`Requests are paid from <strong>${viewer.username}</strong>'s kudos.` : html`You are not logged in: requests go through the shared Anonymous account, served after everyone with kudos when the horde is busy.`}</p>
<form id="prompt-form" class="stack panel">
  <label>Prompt <textarea id="prompt" name="prompt" rows="6" required maxlength="100000" placeholder="Once upon a time"></textarea></label>
  <div class="row">
    <label>Model <select id="model" name="model"><option value="">Any model</option>${models.map((m) => html`<option value="${m}">${m}</option>`)}</select></label>
    <label>Max tokens <input id="max-length" name="max_length" type="number" min="1" max="${maxLength}" value="${Math.min(120, maxLength)}"></label>
    <button type="submit" id="submit">Generate</button>
    <button type="button" id="cancel" class="danger" disabled>Cancel</button>
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
