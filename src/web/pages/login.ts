/** `/login` (one button per configured provider) and the HTML error page. */
import { html } from '../html.js'
import { layout, type PageViewer } from '../layout.js'

/** How each provider is named on its button. */
export const PROVIDER_LABELS: Record<string, string> = { discord: 'Discord', github: 'GitHub', google: 'Google' }

export function loginPage(viewer: PageViewer, providers: string[], next: string): string {
  const query = next === '/account' ? '' : `?next=${encodeURIComponent(next)}`
  return layout({
    title: 'Log in',
    nav: 'login',
    viewer,
    body: html`
<h1>Log in</h1>
<section class="panel narrow">
${providers.length === 0
    ? html`<p>No login provider is configured on this broker. You can still use the <a href="/playground">playground</a> anonymously, or register over the REST API.</p>`
    : html`<p>Log in with an account you already have. The first login creates your horde account; later logins find it again.</p>
<ul class="providers">${providers.map((p) => html`<li><a class="button provider" data-provider="${p}" href="/auth/${p}/login${query}">Continue with ${PROVIDER_LABELS[p] ?? p}</a></li>`)}</ul>`}
<p class="muted">No account is needed to generate text: without one you use the shared Anonymous account.</p>
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
