/**
 * Writes the self-contained HTML report: uPlot's script and stylesheet inlined (no network
 * needed to open it), the figures embedded as JSON, one row of charts per measure with the
 * policies side by side, and a table per class.
 */
import fs from 'node:fs'
import { createRequire } from 'node:module'
import type { PolicyFigures } from './figures.js'
import type { Scenario } from './scenario.js'

const require = createRequire(import.meta.url)

function asset(name: string): string {
  return fs.readFileSync(require.resolve(`uplot/dist/${name}`), 'utf8')
}

const escape = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)

function table(scenario: Scenario, figures: readonly PolicyFigures[]): string {
  const head = '<tr><th>policy</th><th>class</th><th>requests</th><th>done</th><th>unfinished</th><th>refused</th><th>wait p50 s</th><th>wait p95 s</th><th>longest wait s</th><th>paid</th><th>paid past credit line (unfunded)</th><th>minted by uptime of its workers</th><th>earned by its workers</th><th>end balance</th></tr>'
  const rows = figures.flatMap((f) => scenario.requesters.map((r) => {
    const c = f.classes[r.name]
    return `<tr><td>${escape(f.policy)}</td><td>${escape(r.name)}</td><td>${c.requests}</td><td>${c.done}</td><td>${c.unfinished}</td><td>${c.refused}</td><td>${c.waitP50}</td><td>${c.waitP95}</td><td>${c.waitMax}</td><td>${c.paid}</td><td>${c.unfunded}</td><td>${c.minted}</td><td>${c.earned}</td><td>${c.endBalance}</td></tr>`
  }))
  const totals = figures.map((f) => `<tr><td>${escape(f.policy)}</td><td>${f.totals.requests}</td><td>${f.totals.minted}</td><td>${f.totals.generationPaid}</td><td>${f.totals.generationEarned}</td><td>${f.totals.unfunded}</td><td>${f.totals.auditOk ? 'clean' : 'PROBLEMS'}</td></tr>`)
  return `<table id="classes">${head}${rows.join('')}</table>
<table id="totals"><tr><th>policy</th><th>request rows</th><th>minted by uptime</th><th>paid for generation</th><th>earned by workers</th><th>to horde:unfunded</th><th>ledger audit</th></tr>${totals.join('')}</table>`
}

/** The report as one HTML string. */
export function renderReport(scenario: Scenario, figures: readonly PolicyFigures[]): string {
  const data = JSON.stringify({ classes: scenario.requesters.map((r) => r.name), figures }).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Simulation: ${escape(scenario.name)}</title>
<style>${asset('uPlot.min.css')}</style>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
.row{display:flex;gap:1em;flex-wrap:wrap}.row>div{flex:1;min-width:420px}h3{margin:1.2em 0 .2em}</style>
</head><body>
<h1>Economy simulation: ${escape(scenario.name)}</h1>
<p>${escape(scenario.description)}</p>
<p>${scenario.durationSeconds} s of arrivals per policy (plus up to ${scenario.drainSeconds} s to drain), buckets of ${scenario.bucketSeconds} s; broker settings ${escape(JSON.stringify(scenario.env))}.
Policies: ${scenario.policies.map((p) => `<b>${escape(p.name)}</b> ${escape(JSON.stringify(p.env))}`).join(', ')}.
Every figure is read back from the broker's request table and ledger. A wait is the stored <code>finished_at - created_at</code>; a request unfinished at the end counts until then.</p>
${table(scenario, figures)}
<div id="charts"></div>
<script>${asset('uPlot.iife.min.js')}</script>
<script id="figures" type="application/json">${data}</script>
<script>
const { classes, figures } = JSON.parse(document.getElementById('figures').textContent)
const colours = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#17becf']
const measures = [
  ['Wait p50 by class (s), by submission time', f => classes.map(c => f.waitP50[c]), classes],
  ['Wait p95 by class (s), by submission time', f => classes.map(c => f.waitP95[c]), classes],
  ['Requests in the broker (waiting or running)', f => [f.inSystem], ['in system']],
  ['Worker utilisation (stored tokens / capacity)', f => [f.utilisation], ['utilisation']],
  ['Kudos minted by uptime, per bucket', f => [f.mintedUptime], ['minted']],
  ['Kudos paid per class, per bucket', f => classes.map(c => f.paid[c]), classes],
  ['Debt per class (sum of negative balances)', f => classes.map(c => f.debt[c]), classes],
  ['Kudos to horde:unfunded (paid past a credit line), per bucket', f => [f.unfunded], ['unfunded']],
]
const root = document.getElementById('charts')
for (const [title, pick, labels] of measures) {
  const h = document.createElement('h3'); h.textContent = title; root.appendChild(h)
  const row = document.createElement('div'); row.className = 'row'; root.appendChild(row)
  for (const f of figures) {
    const cell = document.createElement('div'); row.appendChild(cell)
    const opts = { title: f.policy, width: 460, height: 220, spanGaps: true,
      series: [{ label: 't (s)' }, ...labels.map((l, i) => ({ label: l, stroke: colours[i % colours.length], width: 2 }))] }
    new uPlot(opts, [f.t, ...pick(f)], cell)
  }
}
</script>
</body></html>
`
}
