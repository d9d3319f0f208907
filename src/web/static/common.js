// Small helpers shared by the page scripts. No framework, no build step.
'use strict'
window.horde = {
  /** The WebSocket URL of a path on this same origin. */
  socketUrl(path) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path
  },
  /** Builds an element with text (never markup) and optional class. */
  el(tag, text, className) {
    const node = document.createElement(tag)
    if (text !== undefined && text !== null) node.textContent = String(text)
    if (className) node.className = className
    return node
  },
  /** A table row from cell texts; `numeric` lists the indexes to align right. */
  row(cells, numeric) {
    const tr = document.createElement('tr')
    cells.forEach((text, i) => tr.appendChild(window.horde.el('td', text, numeric && numeric.includes(i) ? 'num' : undefined)))
    return tr
  },
  emptyRow(text, span) {
    const tr = window.horde.el('tr', undefined, 'empty')
    const td = window.horde.el('td', text)
    td.colSpan = span
    tr.appendChild(td)
    return tr
  },
  kudos(n) {
    return Number(n).toLocaleString('en-US', { maximumFractionDigits: 3 })
  },
  duration(seconds) {
    const s = Math.max(0, Math.floor(seconds))
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60)
    if (d > 0) return d + 'd ' + h + 'h'
    if (h > 0) return h + 'h ' + m + 'm'
    if (m > 0) return m + 'm ' + (s % 60) + 's'
    return s + 's'
  },
  setState(node, state, label) {
    node.dataset.state = state
    node.textContent = label || state
  },
}
