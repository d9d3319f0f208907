/** `/`: workers online, waiting requests, throughput, top kudos; status.js keeps it live. */
import { formatDuration, formatKudos, html, type SafeHtml } from '../html.js'
import { chartPanel, CHART_SCRIPTS, CHART_STYLES } from '../charts.js'
import { layout, type PageViewer } from '../layout.js'
import type { StatusSnapshot } from '../status.js'

function workerRows(status: StatusSnapshot): SafeHtml {
  if (status.workers.length === 0) return html`<tr class="empty"><td colspan="5">No workers online right now.</td></tr>`
  return html`${status.workers.map((w) => html`<tr><td>${w.name}</td><td>${w.owner}</td><td class="models-list">${w.models.join(', ')}</td><td class="num">${w.jobs}</td><td class="num"${w.online_since ? html` data-since="${w.online_since}"` : ''}>${formatDuration(w.uptime_s)}</td></tr>`)}`
}

function waitingRows(status: StatusSnapshot): SafeHtml {
  const entries = Object.entries(status.waiting).sort((a, b) => b[1] - a[1])
  if (entries.length === 0) return html`<tr class="empty"><td colspan="2">Nothing waiting.</td></tr>`
  return html`${entries.map(([model, n]) => html`<tr><td>${model}</td><td class="num">${n}</td></tr>`)}`
}

function topRows(status: StatusSnapshot): SafeHtml {
  if (status.top.length === 0) return html`<tr class="empty"><td colspan="3">Nobody has kudos yet.</td></tr>`
  return html`${status.top.map((u, i) => html`<tr><td class="num">${i + 1}</td><td>${u.username}</td><td class="num">${formatKudos(u.kudos)}</td></tr>`)}`
}

export function homePage(viewer: PageViewer, status: StatusSnapshot): string {
  return layout({
    title: 'Status',
    nav: 'home',
    viewer,
    scripts: ['common.js', 'status.js', 'uptime.js', ...CHART_SCRIPTS],
    styles: CHART_STYLES,
    body: html`
<h1>Horde status <span id="live" class="badge" data-state="static">not live</span></h1>
<section class="cards">
  <div class="card"><div class="label">Workers online</div><div class="big" id="worker-count">${status.workers.length}</div></div>
  <div class="card"><div class="label">Requests waiting</div><div class="big" id="waiting-count">${Object.values(status.waiting).reduce((a, b) => a + b, 0)}</div></div>
  <div class="card"><div class="label">Jobs / min</div><div class="big" id="jobs-per-min">${formatKudos(status.throughput.jobs_per_min)}</div></div>
  <div class="card"><div class="label">Tokens / min</div><div class="big" id="tokens-per-min">${formatKudos(status.throughput.tokens_per_min)}</div></div>
</section>
<div class="grid">
<section>
  <h2>Workers online</h2>
  <div class="scroll"><table><thead><tr><th>Worker</th><th>Owner</th><th>Models</th><th class="num">Jobs</th><th class="num">Up</th></tr></thead>
  <tbody id="workers">${workerRows(status)}</tbody></table></div>
  <p class="muted"><a href="/workers">All workers</a> · <a href="/models">Models</a> · <a href="/run-a-worker">Run a worker</a> and earn kudos.</p>
</section>
<section>
  <h2>Waiting per model</h2>
  <table><thead><tr><th>Model</th><th class="num">Waiting</th></tr></thead>
  <tbody id="waiting">${waitingRows(status)}</tbody></table>
  <h2>Top kudos</h2>
  <table><thead><tr><th class="num">#</th><th>User</th><th class="num">Kudos</th></tr></thead>
  <tbody id="top">${topRows(status)}</tbody></table>
  <p class="muted"><a href="/people">Everyone</a></p>
</section>
</div>
${chartPanel({ kind: 'throughput', src: '/v1/status/history', title: 'Jobs and tokens per minute', windows: true })}
<p class="muted">Anyone can ask for text without an account, through the shared Anonymous account. <a href="/playground">Try the playground</a>.</p>
`,
  })
}
