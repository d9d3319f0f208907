/** Checks a route runs before doing anything: a registered caller, a scope, a role. */
import type { FastifyRequest } from 'fastify'
import type { Principal, Scope } from '../accounts/accounts.js'
import { BrokerError } from '../errors.js'

export function requireUser(request: FastifyRequest, scope?: Scope): Principal {
  const principal = request.principal
  if (principal.anonymous) throw new BrokerError('login_required')
  if (scope && !principal.scopes.has(scope)) throw new BrokerError('insufficient_scope', `This API key lacks the ${scope} scope`)
  return principal
}

/** A registered caller holding one of `roles` (and not suspended): `role_required` otherwise. */
export function requireRole(request: FastifyRequest, roles: string[]): Principal {
  const principal = requireUser(request)
  if (!principal.roles.some((role) => roles.includes(role))) throw new BrokerError('role_required', `Needs one of the roles: ${roles.join(', ')}`, { roles })
  if (principal.suspended) throw new BrokerError('user_suspended')
  return principal
}
