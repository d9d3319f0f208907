/**
 * Browser-facing rules with no framework in them: where a login may send the browser back
 * to (no open redirect), and the Content Security Policy of every HTML page.
 */

/** Where a login goes when it was not told, or was told something unsafe. */
export const DEFAULT_NEXT = '/account'

/**
 * Accepts only a path on this site (`/account?x=1#y`). Anything that could leave the site
 * is replaced by `DEFAULT_NEXT`: absolute URLs, scheme-relative `//host`, `/\host` (which
 * browsers read as `//host`), and control characters.
 */
export function safeNext(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 1000) return DEFAULT_NEXT
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return DEFAULT_NEXT
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) return DEFAULT_NEXT
  let parsed: URL
  try {
    parsed = new URL(raw, 'http://horde.invalid')
  } catch {
    return DEFAULT_NEXT
  }
  if (parsed.origin !== 'http://horde.invalid') return DEFAULT_NEXT
  // Dot segments are resolved above: `/.//evil.example` becomes the path `//evil.example`,
  // which a browser reads as another host. Check what is returned, not only what came in.
  if (parsed.pathname.startsWith('//')) return DEFAULT_NEXT
  // Never bounce back into the login machinery.
  if (parsed.pathname.startsWith('/auth/') || parsed.pathname.startsWith('/logout')) return DEFAULT_NEXT
  return parsed.pathname + parsed.search + parsed.hash
}

/**
 * The CSP of every HTML page: scripts, styles and sockets from this origin only, no inline
 * script or style, no framing. `formTargets` are the OAuth authorize origins a form may
 * redirect to (linking a provider is a POST that ends at the provider).
 */
export function contentSecurityPolicy(formTargets: readonly string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    `form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}`,
    "frame-ancestors 'none'",
  ].join('; ')
}
