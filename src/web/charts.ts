/** The markup of a chart (charts.js draws it with uPlot from `src`), with hour/day tabs when the series has both. */
import { html, type SafeHtml } from './html.js'

export interface ChartPanel {
  kind: 'throughput' | 'queues' | 'balance'
  /** The endpoint serving its bounded series. */
  src: string
  title: string
  /** Offer the last hour and the last day. */
  windows?: boolean
  /** Shown instead of a chart when there is nothing to draw. */
  empty?: string
}

export function chartPanel(chart: ChartPanel): SafeHtml {
  return html`<section class="panel" id="chart-${chart.kind}">
  <div class="copy-row"><h2>${chart.title}</h2>${chart.windows ? html`<div class="chart-tabs"><button type="button" class="secondary small" data-window="hour" aria-pressed="true">Last hour</button><button type="button" class="secondary small" data-window="day" aria-pressed="false">Last day</button></div>` : ''}</div>
  <div class="chart" data-chart="${chart.kind}" data-src="${chart.src}"></div>
  ${chart.empty ? html`<p class="muted chart-note" hidden>${chart.empty}</p>` : ''}
</section>`
}

/** The scripts and stylesheet a page with charts loads. */
export const CHART_SCRIPTS = ['uplot.js', 'charts.js']
export const CHART_STYLES = ['uplot.css']
