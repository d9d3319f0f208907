/** The shared page frame: head, navigation, the signed-in user, one stylesheet, scripts by file. */
import { html, type SafeHtml } from './html.js'

export interface PageViewer {
  /** Null for a visitor who is not logged in. */
  username: string | null
  /** The session's CSRF token, for forms (logout). */
  csrf: string | null
}

export interface LayoutOptions {
  title: string
  /** Which navigation link is the current page. */
  nav: 'home' | 'models' | 'workers' | 'people' | 'run' | 'account' | 'playground' | 'login' | 'none'
  viewer: PageViewer
  /** Scripts under /static to load (deferred, same origin: the CSP allows nothing else). */
  scripts?: string[]
  /** Extra stylesheets under /static (uPlot's, on pages with charts). */
  styles?: string[]
  body: SafeHtml
}

/** The site's sections, in the order the header lists them. */
const NAV: Array<[string, string, LayoutOptions['nav']]> = [
  ['/', 'Status', 'home'], ['/models', 'Models', 'models'], ['/workers', 'Workers', 'workers'], ['/people', 'People', 'people'],
  ['/playground', 'Playground', 'playground'], ['/run-a-worker', 'Run a worker', 'run'], ['/account', 'Account', 'account'],
]

export function layout(options: LayoutOptions): string {
  const { viewer } = options
  const link = (href: string, label: string, key: LayoutOptions['nav']) =>
    html`<a href="${href}"${options.nav === key ? html` aria-current="page"` : ''}>${label}</a>`
  const who = viewer.username
    ? html`<span class="who">${viewer.username}</span>
      <form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${viewer.csrf ?? ''}"><button type="submit" class="link">Log out</button></form>
      <form method="post" action="/logout/everywhere" class="inline"><input type="hidden" name="_csrf" value="${viewer.csrf ?? ''}"><button type="submit" class="link">Log out everywhere</button></form>`
    : link('/login', 'Log in', 'login')
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · horde</title>
<link rel="stylesheet" href="/static/app.css">
${(options.styles ?? []).map((name) => html`<link rel="stylesheet" href="/static/${name}">\n`)}
<link rel="icon" href="data:,">
${(options.scripts ?? []).map((name) => html`<script src="/static/${name}" defer></script>\n`)}</head>
<body>
<header class="top">
  <a class="brand" href="/">horde</a>
  <nav>${NAV.map(([href, label, key]) => link(href, label, key))}</nav>
  <div class="session">${who}</div>
</header>
<main>
${options.body}
</main>
<footer>A volunteer text-generation horde. Kudos are earned by generating and spent by asking. <a href="/run-a-worker">Run a worker</a> to earn them.</footer>
</body>
</html>
`.value
}
