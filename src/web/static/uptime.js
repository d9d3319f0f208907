// Counts live uptimes on: every cell with data-since (ms since the epoch) shows the time since, each second.
'use strict'
;(function () {
  const h = window.horde
  function tick() {
    for (const cell of document.querySelectorAll('[data-since]')) cell.textContent = h.duration((Date.now() - Number(cell.dataset.since)) / 1000)
  }
  setInterval(tick, 1000)
})()
