// Charts drawn with uPlot (served from this site) from the broker's bounded series:
// <div class="chart" data-chart="throughput|queues|balance" data-src="/v1/..."> per chart.
// The data is fetched once when the page loads and again every minute.
'use strict'
;(function () {
  const COLORS = ['#3358d4', '#1a7f4b', '#b42318', '#a15c00', '#7a3fc4', '#0f7d8c', '#c23f83', '#5d6b82']

  function times(series) {
    return series.values ? series.values.map((_, i) => series.start / 1000 + i * series.step_s)
      : series.jobs_per_min.map((_, i) => series.start / 1000 + i * series.step_s)
  }

  function build(kind, data, span) {
    if (kind === 'throughput') {
      const w = data[span]
      return {
        series: [{}, { label: 'Jobs / min', stroke: COLORS[0], width: 2, scale: 'jobs' }, { label: 'Tokens / min', stroke: COLORS[1], width: 2, scale: 'tokens' }],
        axes: [{}, { scale: 'jobs', label: 'jobs / min' }, { scale: 'tokens', side: 1, label: 'tokens / min', grid: { show: false } }],
        data: [times({ start: w.start, step_s: w.step_s, values: w.jobs_per_min }), w.jobs_per_min, w.tokens_per_min],
      }
    }
    if (kind === 'queues') {
      const w = data[span]
      const names = Object.keys(w.models).sort()
      const xs = []
      const length = names.length ? w.models[names[0]].length : 0
      for (let i = 0; i < length; i++) xs.push(w.start / 1000 + i * w.step_s)
      return {
        empty: names.length === 0,
        series: [{}, ...names.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 2 }))],
        axes: [{}, { label: 'waiting' }],
        data: [xs, ...names.map((name) => w.models[name])],
      }
    }
    return {
      series: [{}, { label: 'Balance', stroke: COLORS[0], width: 2, fill: 'rgba(51,88,212,.08)' }],
      axes: [{}, { label: 'kudos' }],
      data: [times(data), data.values],
    }
  }

  function setUp(box) {
    const kind = box.dataset.chart
    const tabs = box.parentElement.querySelectorAll('.chart-tabs button')
    let span = 'hour'
    let plot = null
    let data = null
    const note = box.parentElement.querySelector('.chart-note')

    function draw() {
      if (!data) return
      const spec = build(kind, data, span)
      if (plot) plot.destroy()
      box.replaceChildren()
      if (note) note.hidden = !spec.empty
      box.hidden = Boolean(spec.empty)
      if (spec.empty) return
      plot = new window.uPlot({ width: Math.max(box.clientWidth, 200), height: 220, series: spec.series, axes: spec.axes, legend: { live: false } }, spec.data, box)
    }

    async function load() {
      try {
        const answer = await fetch(box.dataset.src, { credentials: 'same-origin' })
        if (!answer.ok) return
        data = await answer.json()
        draw()
        box.dataset.loaded = '1'
      } catch { /* offline: the next load tries again */ }
    }

    for (const tab of tabs) {
      tab.addEventListener('click', () => {
        span = tab.dataset.window
        for (const other of tabs) other.setAttribute('aria-pressed', String(other === tab))
        draw()
      })
    }
    let width = box.clientWidth
    new ResizeObserver(() => {
      if (plot && Math.abs(box.clientWidth - width) > 4) {
        width = box.clientWidth
        plot.setSize({ width: Math.max(width, 200), height: 220 })
      }
    }).observe(box)
    void load()
    setInterval(load, 60_000)
  }

  for (const box of document.querySelectorAll('.chart[data-chart]')) setUp(box)
})()
