/**
 * `/run-a-worker`: how to lend a machine to this horde, with commands filled in with this
 * broker's address (and a new work-only key, in the one answer that shows it), for the
 * demo backend, KoboldCpp and OpenAI-compatible servers, and AI Horde's own bridge.
 */
import { html, type SafeHtml } from '../html.js'
import { layout, type PageViewer } from '../layout.js'

export interface RunWorkerModel {
  viewer: PageViewer
  /** This broker's public URL, no trailing slash. */
  url: string
  /** A work-only key just created (shown once), with its name. */
  newKey?: { key: string; name: string }
  notice?: { kind: 'ok' | 'error'; text: string }
  /** A model name to put in the examples (the registry's first). */
  exampleModel: string
}

function command(id: string, title: string, text: string, note?: SafeHtml): SafeHtml {
  return html`<div class="copy-row"><h3>${title}</h3><button type="button" class="secondary small" data-copy="${id}">Copy</button></div>
<pre class="command" id="${id}">${text}</pre>${note ?? ''}`
}

export function runWorkerPage(m: RunWorkerModel): string {
  const key = m.newKey?.key ?? 'hb_...'
  const base = `horde-worker --url ${m.url} --key ${key}`
  const keyForm = m.viewer.username
    ? html`<form method="post" action="/run-a-worker/key" class="inline"><input type="hidden" name="_csrf" value="${m.viewer.csrf ?? ''}"><button type="submit" id="create-work-key">Create a work-only key</button></form>
<p class="muted">A work-only key can run workers and nothing else: it cannot spend or send your kudos. Revoke it on your <a href="/account#keys">account</a>.</p>`
    : html`<p><a class="button" href="/login?next=%2Frun-a-worker">Log in to create a work-only key</a></p>
<p class="muted">A worker runs under an account: the kudos it earns are yours.</p>`
  return layout({
    title: 'Run a worker',
    nav: 'run',
    viewer: m.viewer,
    scripts: ['forms.js'],
    body: html`
<h1>Run a worker</h1>
<p>A worker lends a machine that runs a text model to this horde. It holds a connection to the broker, gets each job the moment it exists, and streams the text back. You earn kudos for every token it generates and for every minute it stays online; kudos put your own requests ahead when the horde is busy.</p>
${m.notice ? html`<div class="notice ${m.notice.kind}" role="${m.notice.kind === 'error' ? 'alert' : 'status'}" id="notice">${m.notice.text}</div>` : ''}
<section class="panel" id="key">
  <h2>1. A key for the worker</h2>
  ${m.newKey ? html`<div class="notice ok" role="status" id="new-key"><p>New work-only key <strong>${m.newKey.name}</strong>. Copy it now: it is shown only this once. The commands below have it filled in.</p><code class="key" id="new-key-text">${m.newKey.key}</code> <button type="button" class="secondary small" data-copy="new-key-text">Copy</button></div>` : keyForm}
</section>
<section class="panel">
  <h2>2. The worker program</h2>
  ${command('cmd-install', 'Install (Node.js 20.19+)', '# in a copy of the horde-broker source\nnpm ci && npm run build && npm install -g .')}
  <p class="muted">This installs the <code>horde-worker</code> command. From a checkout you can also run <code>npx tsx scripts/horde-worker.ts</code> with the same options.</p>
</section>
<section class="panel">
  <h2>3. Start it with your backend</h2>
  ${command('cmd-demo', 'Try it: the built-in demo backend (no model needed)', `${base} --name my-demo --backend demo --delay-ms 20`)}
  ${command('cmd-kobold', 'KoboldCpp', `${base} --name my-kobold \\\n  --backend kobold --backend-url http://127.0.0.1:5001 \\\n  --max-length 512 --max-context-length 4096`,
    html`<p class="muted">The model name is read from KoboldCpp. The worker waits while KoboldCpp is still loading its model.</p>`)}
  ${command('cmd-openai', 'An OpenAI-compatible server (vLLM, llama.cpp server, …)', `${base} --name my-vllm \\\n  --backend openai --backend-url http://127.0.0.1:8000 --backend-key sk-... \\\n  --model ${m.exampleModel} --backend-model <the name your server knows>`,
    html`<p class="muted"><code>--model</code> is the name the horde lists (see <a href="/models">models</a>); a name the registry does not list earns the minimum.</p>`)}
  <p class="muted">More options (threads, priority users, a config file in AI Horde's <code>bridgeData.yaml</code> keys): <code>horde-worker --help</code> and the README.</p>
</section>
<section class="panel" id="ai-horde">
  <h2>Or: AI Horde's own worker</h2>
  <p>The AI Horde KoboldAI bridge speaks AI Horde's API, which this broker answers at <code>${m.url}/api/v2</code>. Set in its <code>bridgeData.yaml</code>:</p>
  ${command('cmd-bridge', 'bridgeData.yaml', `horde_url: "${m.url}"   # the bridge calls ${m.url}/api/v2/...\napi_key: "${key}"`)}
</section>
`,
  })
}
