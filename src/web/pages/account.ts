/**
 * `/account`: balance and categories, API keys (a new key is shown in the answer that
 * created it and never again), ledger history with paging, the transfer form (carrying an
 * idempotency key generated with the form), linked logins, and the user's workers.
 */
import type { IssuedKey, KeyView } from '../../accounts/accounts.js'
import type { Identity } from '../../accounts/identities.js'
import type { Account, EntryView } from '../../ledger/ledger.js'
import { toKudos } from '../../economy/amounts.js'
import { formatDuration, formatKudos, formatTime, html, type SafeHtml } from '../html.js'
import { chartPanel, CHART_SCRIPTS, CHART_STYLES } from '../charts.js'
import { layout, type PageViewer } from '../layout.js'
import { PROVIDER_LABELS } from './login.js'

export interface WorkerRow {
  name: string
  uptimeMs: number
  jobs: number
  tokens: number
  /** Milli-kudos. */
  earned: number
  lastSeenAt: number | null
}

export interface TransferForm {
  to: string
  amount: string
  memo: string
  idempotencyKey: string
}

export interface AccountPageModel {
  viewer: PageViewer & { csrf: string }
  username: string
  createdAt: number
  account: Account | undefined
  keys: KeyView[]
  /** Set only in the answer to the POST that created it. */
  newKey?: IssuedKey
  entries: Array<EntryView & { counterparty: string | null }>
  /** Posting id for the next (older) page, null on the last page. */
  nextBefore: number | null
  /** True when this page is not the newest. */
  paged: boolean
  workers: WorkerRow[]
  identities: Identity[]
  /** Configured providers not yet linked. */
  linkable: string[]
  transfer: TransferForm
  notice?: { kind: 'ok' | 'error'; text: string }
}

const CATEGORIES: Array<[keyof Account, string]> = [
  ['earnedGeneration', 'Earned by generating'], ['earnedUptime', 'Earned by uptime'], ['awarded', 'Awarded'],
  ['received', 'Received'], ['sent', 'Sent'], ['spent', 'Spent on requests'],
]

const KIND_LABELS: Record<string, string> = { generation: 'Generation', transfer: 'Transfer', uptime: 'Uptime', award: 'Award' }

function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${token}">`
}

function keysSection(m: AccountPageModel): SafeHtml {
  const rows = m.keys.length === 0
    ? html`<tr class="empty"><td colspan="5">No API keys.</td></tr>`
    : html`${m.keys.map((k) => html`<tr${k.revokedAt ? html` class="revoked"` : ''}><td>${k.name}</td><td><code>${k.prefix}</code></td><td>${k.scopes.join(', ')}</td><td>${formatTime(k.createdAt)}</td>
<td>${k.revokedAt ? html`revoked ${formatTime(k.revokedAt)}` : html`<form method="post" action="/account/keys/${k.id}/revoke" class="inline">${csrfField(m.viewer.csrf)}<button type="submit" class="danger small">Revoke</button></form>`}</td></tr>`)}`
  return html`
<section class="panel" id="keys">
  <h2>API keys</h2>
  ${m.newKey ? html`<div class="notice ok" role="status" id="new-key"><p>New key <strong>${m.newKey.name}</strong> (${m.newKey.scopes.join(', ')}). Copy it now: it is shown only this once.</p><code class="key">${m.newKey.key}</code></div>` : ''}
  <div class="scroll"><table><thead><tr><th>Name</th><th>Key</th><th>Scopes</th><th>Created</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>
  <form method="post" action="/account/keys" class="row">
    ${csrfField(m.viewer.csrf)}
    <label>Name <input name="name" required maxlength="64" placeholder="my-bot" data-hint="Give the key a name (1 to 64 characters), to tell your keys apart."></label>
    <fieldset class="scopes"><legend>Scopes</legend>
      ${['all', 'read', 'transfer', 'generate', 'work'].map((s) => html`<label><input type="checkbox" name="scopes" value="${s}"${s === 'all' ? ' checked' : ''}> ${s}</label>`)}
    </fieldset>
    <button type="submit">Create key</button>
  </form>
</section>`
}

function ledgerSection(m: AccountPageModel): SafeHtml {
  const rows = m.entries.length === 0
    ? html`<tr class="empty"><td colspan="5">No entries${m.paged ? ' on this page' : ' yet'}.</td></tr>`
    : html`${m.entries.map((e) => html`<tr><td>${formatTime(e.createdAt)}</td><td>${KIND_LABELS[e.kind] ?? e.kind}</td><td>${e.counterparty ?? ''}</td><td>${e.memo ?? ''}</td><td class="num ${e.amount < 0 ? 'neg' : 'pos'}">${e.amount > 0 ? '+' : ''}${formatKudos(toKudos(e.amount))}</td></tr>`)}`
  return html`
<section class="panel" id="ledger">
  <h2>History</h2>
  <div class="scroll"><table><thead><tr><th>When</th><th>What</th><th>With</th><th>Memo</th><th class="num">Kudos</th></tr></thead><tbody>${rows}</tbody></table></div>
  <p class="pager">${m.paged ? html`<a href="/account#ledger">Newest</a>` : ''} ${m.nextBefore ? html`<a href="/account?before=${m.nextBefore}#ledger" rel="next">Older</a>` : ''}</p>
</section>`
}

function transferSection(m: AccountPageModel): SafeHtml {
  return html`
<section class="panel" id="transfer">
  <h2>Send kudos</h2>
  <form method="post" action="/account/transfer" class="stack">
    ${csrfField(m.viewer.csrf)}
    <input type="hidden" name="idempotency_key" value="${m.transfer.idempotencyKey}">
    <label>To (username) <input name="to" required maxlength="64" value="${m.transfer.to}" data-hint="Enter the username of the person to send kudos to."></label>
    <label>Amount <input name="amount" required inputmode="decimal" pattern="[0-9]+([.][0-9]{1,3})?" value="${m.transfer.amount}" data-hint="Enter an amount of kudos like 12 or 12.5: digits, with at most 3 after the point." aria-describedby="amount-hint"><span class="hint" id="amount-hint">Kudos, e.g. 12 or 12.5 (up to 3 decimals).</span></label>
    <label>Memo <input name="memo" maxlength="500" value="${m.transfer.memo}"></label>
    <button type="submit">Send</button>
  </form>
  <p class="muted">You can send up to your positive balance. Sending the same form twice moves the kudos once.</p>
</section>`
}

function workersSection(m: AccountPageModel): SafeHtml {
  const rows = m.workers.length === 0
    ? html`<tr class="empty"><td colspan="6">You run no workers. A worker earns kudos for every job and for staying online: <a href="/run-a-worker">run one</a>.</td></tr>`
    : html`${m.workers.map((w) => html`<tr><td>${w.name}</td><td class="num">${formatDuration(w.uptimeMs / 1000)}</td><td class="num">${w.jobs}</td><td class="num">${w.tokens}</td><td class="num">${formatKudos(toKudos(w.earned))}</td><td>${w.lastSeenAt ? formatTime(w.lastSeenAt) : 'never'}</td></tr>`)}`
  return html`
<section class="panel" id="workers">
  <h2>Your workers</h2>
  <div class="scroll"><table><thead><tr><th>Name</th><th class="num">Uptime</th><th class="num">Jobs</th><th class="num">Tokens</th><th class="num">Earned</th><th>Last seen</th></tr></thead><tbody>${rows}</tbody></table></div>
</section>`
}

function loginsSection(m: AccountPageModel): SafeHtml {
  return html`
<section class="panel" id="logins">
  <h2>Logins</h2>
  <ul>${m.identities.map((i) => html`<li>${PROVIDER_LABELS[i.provider] ?? i.provider}${i.displayName ? html` as <strong>${i.displayName}</strong>` : ''}</li>`)}</ul>
  ${m.linkable.map((p) => html`<form method="post" action="/account/link/${p}" class="inline">${csrfField(m.viewer.csrf)}<button type="submit" class="secondary" data-link="${p}">Link ${PROVIDER_LABELS[p] ?? p}</button></form> `)}
</section>`
}

/** For a user with nothing to send yet: how kudos are earned, before the transfer form. */
function earnSection(): SafeHtml {
  return html`
<section class="panel" id="earn">
  <h2>Earn kudos</h2>
  <p>You have no kudos to send yet. A worker earns them for every token it generates and for every minute it stays online; with kudos your requests go first when the horde is busy.</p>
  <p><a class="button" href="/run-a-worker">Run a worker</a></p>
</section>`
}

export function accountPage(m: AccountPageModel): string {
  const balance = toKudos(m.account?.balance ?? 0)
  // Someone with nothing to send is shown how to earn first; the transfer form comes later.
  const first = balance > 0 ? html`${transferSection(m)}${loginsSection(m)}` : html`${earnSection()}${loginsSection(m)}`
  return layout({
    title: 'Account',
    nav: 'account',
    viewer: m.viewer,
    scripts: ['forms.js', ...CHART_SCRIPTS],
    styles: CHART_STYLES,
    body: html`
<h1>${m.username}</h1>
${m.notice ? html`<div class="notice ${m.notice.kind}" role="${m.notice.kind === 'error' ? 'alert' : 'status'}" id="notice">${m.notice.text}</div>` : ''}
<section class="cards">
  <div class="card"><div class="label">Balance</div><div class="big ${balance < 0 ? 'neg' : ''}" id="balance">${formatKudos(balance)}</div><div class="muted">kudos</div></div>
  ${CATEGORIES.map(([field, label]) => html`<div class="card small"><div class="label">${label}</div><div class="mid" data-category="${field}">${formatKudos(toKudos(Number(m.account?.[field] ?? 0)))}</div></div>`)}
</section>
<p class="muted">Member since ${formatTime(m.createdAt)}.</p>
<div class="grid">${first}</div>
${chartPanel({ kind: 'balance', src: '/v1/users/me/balance/history', title: 'Balance, last week' })}
${keysSection(m)}
${workersSection(m)}
${balance > 0 ? '' : transferSection(m)}
${ledgerSection(m)}
`,
  })
}
