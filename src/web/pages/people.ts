/** `/people`: the kudos leaderboard, paged; `/people/<name>`: a public profile (kudos, workers, contributions). */
import type { AccountRecord, WorkerRecord } from '../../store/ports.js'
import { toKudos } from '../../economy/amounts.js'
import { formatDuration, formatKudos, formatTime, html } from '../html.js'
import { layout, type PageViewer } from '../layout.js'

/** People per leaderboard page. */
export const PEOPLE_PAGE = 25

export interface LeaderboardModel {
  /** Page number, from 1. */
  page: number
  rows: Array<{ username: string; balance: number }>
  /** True when a next page exists. */
  more: boolean
}

export function leaderboardPage(viewer: PageViewer, m: LeaderboardModel): string {
  const first = (m.page - 1) * PEOPLE_PAGE
  return layout({
    title: 'People',
    nav: 'people',
    viewer,
    body: html`
<h1>People</h1>
<p class="muted">Everyone with kudos, most first. Kudos are earned by running workers and spent on requests.</p>
<div class="scroll"><table id="leaderboard"><thead><tr><th class="num">#</th><th>User</th><th class="num">Kudos</th></tr></thead><tbody>
${m.rows.length === 0
    ? html`<tr class="empty"><td colspan="3">${m.page === 1 ? 'Nobody has kudos yet.' : 'Nobody on this page.'}</td></tr>`
    : m.rows.map((r, i) => html`<tr><td class="num">${first + i + 1}</td><td><a href="/people/${encodeURIComponent(r.username)}">${r.username}</a></td><td class="num ${r.balance < 0 ? 'neg' : ''}">${formatKudos(toKudos(r.balance))}</td></tr>`)}
</tbody></table></div>
<p class="pager">${m.page > 1 ? html`<a href="/people${m.page === 2 ? '' : `?page=${m.page - 1}`}" rel="prev">Previous</a>` : ''} ${m.more ? html`<a href="/people?page=${m.page + 1}" rel="next">Next</a>` : ''}</p>
`,
  })
}

export interface ProfileModel {
  username: string
  createdAt: number
  roles: string[]
  account: AccountRecord | undefined
  workers: WorkerRecord[]
  /** Names of the user's workers online now. */
  online: ReadonlySet<string>
}

export function profilePage(viewer: PageViewer, m: ProfileModel): string {
  const a = m.account
  const jobs = m.workers.reduce((sum, w) => sum + w.jobs, 0)
  const tokens = m.workers.reduce((sum, w) => sum + w.tokens, 0)
  const card = (label: string, value: string, id: string) => html`<div class="card"><div class="label">${label}</div><div class="big" id="${id}">${value}</div></div>`
  return layout({
    title: m.username,
    nav: 'people',
    viewer,
    body: html`
<h1>${m.username}${m.roles.map((r) => html` <span class="flag">${r}</span>`)}</h1>
<p class="muted">Member since ${formatTime(m.createdAt)}.</p>
<section class="cards">
  ${card('Kudos', formatKudos(toKudos(a?.balance ?? 0)), 'profile-kudos')}
  ${card('Earned by generating', formatKudos(toKudos(a?.earnedGeneration ?? 0)), 'profile-generated')}
  ${card('Earned by uptime', formatKudos(toKudos(a?.earnedUptime ?? 0)), 'profile-uptime')}
  ${card('Jobs done', formatKudos(jobs), 'profile-jobs')}
  ${card('Tokens generated', formatKudos(tokens), 'profile-tokens')}
</section>
<section>
  <h2>Workers</h2>
  <div class="scroll"><table id="profile-workers"><thead><tr><th>Name</th><th></th><th class="num">Jobs</th><th class="num">Tokens</th><th class="num">Kudos earned</th><th class="num">Uptime in all</th><th>Last seen</th></tr></thead><tbody>
  ${m.workers.length === 0
    ? html`<tr class="empty"><td colspan="7">No workers yet.</td></tr>`
    : m.workers.map((w) => html`<tr><td>${w.name}</td><td>${m.online.has(w.name) ? html`<span class="badge" data-state="live">online</span>` : ''}</td><td class="num">${w.jobs}</td><td class="num">${w.tokens}</td><td class="num">${formatKudos(toKudos(w.earned))}</td><td class="num">${formatDuration(w.uptimeMs / 1000)}</td><td>${w.lastSeenAt ? formatTime(w.lastSeenAt) : 'never'}</td></tr>`)}
  </tbody></table></div>
</section>
<p><a href="/people">All people</a></p>
`,
  })
}
