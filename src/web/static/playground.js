// The playground: submits a prompt over the client socket /v1/client and shows the request's
// life: accepted, queue position while waiting, text streaming in, restarts (the text of an
// earlier attempt is thrown away), done, failed or cancelled, and the worker, model and cost
// in the summary. Before sending it shows the most the request can cost (/v1/estimate). A
// logged-in browser is authenticated by its session cookie; without one it is anonymous.
'use strict'
;(function () {
  const h = window.horde
  const form = document.getElementById('prompt-form')
  const promptBox = document.getElementById('prompt')
  const model = document.getElementById('model')
  const maxLength = document.getElementById('max-length')
  const maxContext = document.getElementById('max-context-length')
  const samplers = document.querySelectorAll('[data-param]')
  const estimate = document.getElementById('estimate')
  const submit = document.getElementById('submit')
  const cancel = document.getElementById('cancel')
  const state = document.getElementById('state')
  const queue = document.getElementById('queue')
  const output = document.getElementById('output')
  const summary = document.getElementById('summary')

  let socket = null
  let ready = null
  let seq = 0
  /** The request being shown: { id, request, attempt, text } */
  let current = null

  function open() {
    if (socket && socket.readyState <= 1) return ready
    socket = new WebSocket(h.socketUrl('/v1/client'))
    ready = new Promise((resolve, reject) => {
      socket.onopen = () => resolve(socket)
      socket.onerror = () => reject(new Error('The generation service is not reachable right now.'))
    })
    socket.onmessage = (event) => {
      let message
      try { message = JSON.parse(event.data) } catch { return }
      handle(message)
    }
    socket.onclose = () => {
      socket = null
      if (current && !current.finished) finish('failed', 'The connection to the broker closed.')
    }
    return ready
  }

  function busy(on) {
    submit.disabled = on
    cancel.disabled = !on
  }

  function finish(kind, message) {
    if (current) current.finished = true
    h.setState(state, kind)
    queue.hidden = true
    busy(false)
    if (message) summary.textContent = message
  }

  /** "Worker w1 · model m · 40 tokens · 1.2 kudos": what the request got and paid, as far as it is known. */
  function describe(m) {
    const parts = []
    const worker = m.worker || current.worker
    const served = m.model || current.model
    if (worker) parts.push('Worker ' + worker)
    if (served) parts.push(served)
    if (m.tokens !== undefined) parts.push(m.tokens + ' tokens')
    if (m.kudos !== undefined) parts.push(h.kudos(m.kudos) + ' kudos')
    return parts.join(' · ')
  }

  // The most the request can cost, before it is sent: asked again a moment after each change.
  let estimateTimer = null
  let estimateSeq = 0
  function refreshEstimate() {
    clearTimeout(estimateTimer)
    estimateTimer = setTimeout(async () => {
      const length = Number(maxLength.value)
      if (!Number.isInteger(length) || length < 1) { estimate.textContent = ''; return }
      const seqHere = ++estimateSeq
      const query = new URLSearchParams({ max_length: String(length), prompt_chars: String(promptBox.value.length) })
      if (model.value) query.set('model', model.value)
      try {
        const answer = await fetch('/v1/estimate?' + query, { credentials: 'same-origin' })
        if (!answer.ok || seqHere !== estimateSeq) return
        const body = await answer.json()
        estimate.textContent = 'Costs at most ' + h.kudos(body.kudos) + ' kudos'
      } catch { estimate.textContent = '' }
    }, 250)
  }
  for (const input of [promptBox, model, maxLength]) input.addEventListener('input', refreshEstimate)
  refreshEstimate()

  function mine(message) {
    return current && !current.finished && (message.request === current.request || (message.id !== undefined && message.id === current.id))
  }

  function handle(m) {
    if (!mine(m)) return
    switch (m.type) {
      case 'accepted':
        current.request = m.request
        h.setState(state, 'queued', 'accepted')
        if (current.cancelWanted) sendCancel()
        break
      case 'queued':
        h.setState(state, 'queued', 'queued')
        queue.hidden = false
        // The protocol counts the requests ahead; people count from one.
        // An ETA only when some worker can serve it: otherwise there is nothing to promise.
        queue.textContent = (m.position === null ? 'Waiting in the queue' : 'Position ' + (m.position + 1) + ' in the queue') +
          (m.is_possible === false ? '. No worker online serves this request right now.'
            : (m.eta_seconds ? ', about ' + h.duration(m.eta_seconds) + ' to wait.' : '.'))
        break
      case 'started':
        current.attempt = m.attempt
        current.text = ''
        output.textContent = ''
        queue.hidden = true
        h.setState(state, 'streaming', 'streaming')
        current.worker = m.worker
        current.model = m.model
        summary.textContent = describe({})
        break
      case 'chunk':
        if (m.attempt !== current.attempt) break
        current.text += m.text
        output.textContent = current.text
        break
      case 'restarted':
        // A worker dropped the job: whatever an earlier attempt streamed is void.
        current.attempt = m.attempt
        current.text = ''
        output.textContent = ''
        h.setState(state, 'queued', 'restarted')
        break
      case 'done':
        output.textContent = m.text
        finish('done', describe(m))
        break
      case 'failed':
        finish('failed', 'Failed: ' + m.message + ' (' + m.code + ')')
        break
      case 'cancelled':
        finish('cancelled', 'Cancelled' + (m.worker || current.worker ? ' · ' + describe(m) : ' before a worker started · ' + h.kudos(m.kudos || 0) + ' kudos'))
        break
      case 'error':
        finish('failed', 'Refused: ' + m.message + ' (' + m.code + ')')
        break
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const prompt = promptBox.value
    if (!prompt.trim()) return
    output.textContent = ''
    summary.textContent = ''
    queue.hidden = true
    current = { id: 'p' + (++seq), request: null, attempt: 0, text: '', finished: false, cancelWanted: false, worker: null, model: null }
    busy(true)
    h.setState(state, 'connecting', 'connecting')
    let ws
    try {
      ws = await open()
    } catch (error) {
      finish('failed', error.message)
      return
    }
    const frame = { type: 'submit', id: current.id, prompt }
    if (model.value) frame.models = [model.value]
    const length = Number(maxLength.value)
    if (Number.isInteger(length) && length > 0) frame.max_length = length
    const context = Number(maxContext.value)
    if (Number.isInteger(context) && context > 0) frame.max_context_length = context
    const params = {}
    for (const input of samplers) if (input.value !== '' && Number.isFinite(Number(input.value))) params[input.dataset.param] = Number(input.value)
    frame.params = params
    ws.send(JSON.stringify(frame))
  })

  function sendCancel() {
    socket.send(JSON.stringify({ type: 'cancel', id: 'c' + (++seq), request: current.request }))
    summary.textContent = 'Cancelling…'
  }

  cancel.addEventListener('click', () => {
    if (!current || current.finished || !socket) return
    cancel.disabled = true
    // Not accepted yet: there is no request id to name; cancel as soon as there is.
    if (!current.request) current.cancelWanted = true
    else sendCancel()
  })
})()
