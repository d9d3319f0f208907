/** `/models`: every served model with its workers, queue, ETA and speed; registry models nobody serves apart; the queue chart. */
import { chartPanel, CHART_SCRIPTS, CHART_STYLES } from '../charts.js'
import { formatDuration, formatKudos, html, type SafeHtml } from '../html.js'
import type { ModelPageRow } from '../horde-view.js'
import { layout, type PageViewer } from '../layout.js'

function servedRows(rows: ModelPageRow[]): SafeHtml {
  if (rows.length === 0) return html`<tr class="empty"><td colspan="8">No worker is online. <a href="/run-a-worker">Run one</a>: it earns kudos for every job.</td></tr>`
  return html`${rows.map((m) => html`<tr><td class="models-list">${m.name}${m.registered ? '' : html` <span class="flag" title="Not in this broker's model registry: its workers earn the minimum">unlisted</span>`}</td>
<td class="num">${m.sizeB === null ? '' : `${m.sizeB}B`}</td><td class="num">${m.workers}</td><td class="num">${m.threads}</td>
<td class="num">${m.waiting}</td><td class="num">${m.queuedTokens ? formatKudos(m.queuedTokens) : '0'}</td>
<td class="num">${m.etaSeconds === null ? '' : formatDuration(m.etaSeconds)}</td>
<td class="num">${formatKudos(m.tokensLastHour)}</td><td class="num">${m.tokensPerS === null ? '–' : m.tokensPerS.toFixed(1)}</td></tr>`)}`
}

function unservedRows(rows: ModelPageRow[]): SafeHtml {
  if (rows.length === 0) return html`<tr class="empty"><td colspan="3">Every listed model has a worker.</td></tr>`
  return html`${rows.map((m) => html`<tr><td class="models-list">${m.name}</td><td class="num">${m.sizeB === null ? '' : `${m.sizeB}B`}</td><td class="num">${m.waiting}</td></tr>`)}`
}

export function modelsPage(viewer: PageViewer, models: { served: ModelPageRow[]; unserved: ModelPageRow[] }): string {
  return layout({
    title: 'Models',
    nav: 'models',
    viewer,
    scripts: ['common.js', ...CHART_SCRIPTS],
    styles: CHART_STYLES,
    body: html`
<h1>Models</h1>
<section>
  <h2>Served now</h2>
  <div class="scroll"><table id="served"><thead><tr><th>Model</th><th class="num">Size</th><th class="num">Workers</th><th class="num">Threads</th><th class="num">Waiting</th><th class="num" title="The most tokens the waiting requests ask for">Tokens asked</th><th class="num">ETA</th><th class="num">Tokens, last hour</th><th class="num">Tokens/s</th></tr></thead>
  <tbody>${servedRows(models.served)}</tbody></table></div>
  <p class="muted">ETA: a rough wait for a new request. Tokens/s: the recent speed of its jobs, as this broker measured them.</p>
</section>
${chartPanel({ kind: 'queues', src: '/v1/status/models/history', title: 'Queue length per model', windows: true, empty: 'Nothing has waited in this period.' })}
<section>
  <h2>Listed, but no worker serves them</h2>
  <div class="scroll"><table id="unserved"><thead><tr><th>Model</th><th class="num">Size</th><th class="num">Waiting</th></tr></thead>
  <tbody>${unservedRows(models.unserved)}</tbody></table></div>
  <p class="muted">Requests for these wait until a worker serves one. <a href="/run-a-worker">Run a worker</a>.</p>
</section>
`,
  })
}
