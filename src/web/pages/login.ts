/** `/login` (one button per configured provider) and the HTML error page. */
import { html } from '../html.js'
import { layout, type PageViewer } from '../layout.js'

/** How each provider is named on its button. */
export const PROVIDER_LABELS: Record<string, string> = { discord: 'Discord', github: 'GitHub', google: 'Google' }

export function loginPage(viewer: PageViewer, providers: string[], next: string, failure?: string): string {
  const query = next === '/account' ? '' : `?next=${encodeURIComponent(next)}`
  return layout({
    title: 'Log in',
    nav: 'login',
    viewer,
    scripts: ['forms.js'],
    body: html`
<h1>Log in</h1>
<section class="panel narrow">
${providers.length === 0
    ? html`<p>No login provider is configured on this broker. Log in with an API key below, or use the <a href="/playground">playground</a> anonymously.</p>`
    : html`<p>Log in with an account you already have. The first login creates your horde account; later logins find it again.</p>
<ul class="providers">${providers.map((p) => html`<li><a class="button provider" data-provider="${p}" href="/auth/${p}/login${query}">Continue with ${PROVIDER_LABELS[p] ?? p}</a></li>`)}</ul>`}
<p class="muted">No account is needed to generate text: without one you use the shared Anonymous account.</p>
</section>
<section class="panel narrow" id="key-login">
  <h2>Log in with an API key</h2>
  ${failure ? html`<p class="error" role="alert" id="login-error">${failure}</p>` : ''}
  <form method="post" action="/login/key" class="stack">
    <input type="hidden" name="next" value="${next}">
    <label>API key <input name="key" type="password" required autocomplete="current-password" pattern="hb_[A-Za-z0-9_\\-]{12}_[A-Za-z0-9_\\-]{32}" data-hint="An API key looks like hb_ followed by 12 characters, an underscore and 32 more, as it was shown when it was made." spellcheck="false"></label>
    <button type="submit">Log in with the key</button>
  </form>
  <p class="muted">The key you got when you registered (scope <code>all</code>) opens your account page in this browser.</p>
</section>
`,
  })
}

export function errorPage(viewer: PageViewer, status: number, message: string): string {
  return layout({
    title: status === 404 ? 'Not found' : 'Error',
    nav: 'none',
    viewer,
    body: html`
<h1>${status === 404 ? 'Not found' : 'Something went wrong'}</h1>
<section class="panel narrow"><p class="error" role="alert">${message}</p><p><a href="/">Back to the status page</a></p></section>
`,
  })
}
