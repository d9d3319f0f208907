/** `/workers`: every worker online, its limits, speed, jobs, kudos and live uptime (status.js counts it on). */
import { formatDuration, formatKudos, html, type SafeHtml } from '../html.js'
import type { WorkerPageRow } from '../horde-view.js'
import { layout, type PageViewer } from '../layout.js'

function rows(workers: WorkerPageRow[], now: number): SafeHtml {
  if (workers.length === 0) return html`<tr class="empty"><td colspan="10">No workers online right now. <a href="/run-a-worker">Run one</a>.</td></tr>`
  return html`${workers.map((w) => html`<tr><td>${w.name}</td><td><a href="/people/${encodeURIComponent(w.owner)}">${w.owner}</a></td><td class="models-list">${w.models.join(', ')}</td>
<td class="num">${w.maxLength} / ${w.maxContextLength}</td><td class="num">${w.threads}</td><td class="num">${w.tokensPerS === null ? '–' : w.tokensPerS.toFixed(1)}</td>
<td class="num">${w.jobs}</td><td class="num">${formatKudos(w.earned)}</td>
<td class="num"${w.onlineSince === null ? '' : html` data-since="${w.onlineSince}"`}>${w.onlineSince === null ? '' : formatDuration((now - w.onlineSince) / 1000)}</td>
<td>${w.flags.length ? w.flags.map((f) => html`<span class="flag" data-flag="${f}">${f}</span>`) : html`<span class="muted">–</span>`}</td></tr>`)}`
}

export function workersPage(viewer: PageViewer, workers: WorkerPageRow[], now: number): string {
  return layout({
    title: 'Workers',
    nav: 'workers',
    viewer,
    scripts: ['common.js', 'uptime.js'],
    body: html`
<h1>Workers <span class="badge">${workers.length} online</span></h1>
<div class="scroll"><table id="worker-list"><thead><tr><th>Worker</th><th>Owner</th><th>Models</th><th class="num" title="Most tokens per job / longest context">Length / context</th><th class="num">Threads</th><th class="num">Tokens/s</th><th class="num">Jobs</th><th class="num">Kudos earned</th><th class="num">Up</th><th>Flags</th></tr></thead>
<tbody>${rows(workers, now)}</tbody></table></div>
<p class="muted">Jobs and kudos count the worker's whole history under its name. Tokens/s is its recent speed as this broker measured it. Flags (trusted, paused) are set by the horde's moderators.</p>
`,
  })
}
