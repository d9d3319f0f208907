// Keeps the status page live: one snapshot on connect and then one every few seconds
// over /v1/status/live. Reconnects with back-off; never reloads the page.
'use strict'
;(function () {
  const h = window.horde
  const live = document.getElementById('live')
  let delay = 500

  function render(s) {
    const workers = document.getElementById('workers')
    workers.replaceChildren(...(s.workers.length === 0
      ? [h.emptyRow('No workers online right now.', 5)]
      : s.workers.map((w) => {
        const tr = h.row([w.name, w.owner, w.models.join(', '), w.jobs, h.duration(w.uptime_s)], [3, 4])
        // uptime.js counts it on between snapshots.
        if (w.online_since) tr.lastChild.dataset.since = String(w.online_since)
        return tr
      })))
    const waiting = Object.entries(s.waiting).sort((a, b) => b[1] - a[1])
    document.getElementById('waiting').replaceChildren(...(waiting.length === 0
      ? [h.emptyRow('Nothing waiting.', 2)]
      : waiting.map(([model, n]) => h.row([model, n], [1]))))
    document.getElementById('top').replaceChildren(...(s.top.length === 0
      ? [h.emptyRow('Nobody has kudos yet.', 3)]
      : s.top.map((u, i) => h.row([i + 1, u.username, h.kudos(u.kudos)], [0, 2]))))
    document.getElementById('worker-count').textContent = s.workers.length
    document.getElementById('waiting-count').textContent = waiting.reduce((a, [, n]) => a + n, 0)
    document.getElementById('jobs-per-min').textContent = h.kudos(s.throughput.jobs_per_min)
    document.getElementById('tokens-per-min').textContent = h.kudos(s.throughput.tokens_per_min)
    document.body.dataset.updated = String(Date.now())
  }

  function connect() {
    h.setState(live, 'connecting', 'connecting')
    const socket = new WebSocket(h.socketUrl('/v1/status/live'))
    socket.onopen = () => { delay = 500; h.setState(live, 'live', 'live') }
    socket.onmessage = (event) => {
      let message
      try { message = JSON.parse(event.data) } catch { return }
      if (message.type === 'status') render(message.status)
    }
    socket.onclose = () => {
      h.setState(live, 'offline', 'reconnecting')
      setTimeout(connect, delay)
      delay = Math.min(delay * 2, 15000)
    }
  }
  connect()
})()
