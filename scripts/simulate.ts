/**
 * `npm run simulate -- <scenario.json> [--out report.html]`: replays a scenario against a real
 * broker once per policy and writes a self-contained HTML report. Progress goes to stderr.
 */
import fs from 'node:fs'
import { computeFigures, type PolicyFigures } from './simulate/figures.js'
import { renderReport } from './simulate/report.js'
import { runPolicy } from './simulate/run.js'
import { loadScenario, ScenarioError } from './simulate/scenario.js'

async function main(argv: string[]): Promise<number> {
  const args = [...argv]
  const outAt = args.indexOf('--out')
  const out = outAt >= 0 ? args.splice(outAt, 2)[1] : 'simulation-report.html'
  const file = args[0] ?? 'scripts/simulate/scenarios/steady.json'
  const scenario = loadScenario(file)
  const figures: PolicyFigures[] = []
  const began = Date.now()
  for (const policy of scenario.policies) {
    const run = await runPolicy(scenario, policy, (p) => {
      process.stderr.write(`\r${scenario.name} [${p.policy}] ${p.elapsed.toFixed(0)}/${p.duration}s submitted ${p.submitted} finished ${p.finished}   `)
    })
    process.stderr.write('\n')
    for (const [cls, codes] of Object.entries(run.refusedCodes)) process.stderr.write(`refused under ${policy.name}: ${cls} ${Object.entries(codes).map(([code, n]) => `${code} ${n}`).join(', ')}\n`)
    if (!run.audit.ok) process.stderr.write(`ledger audit problems under ${policy.name}: ${run.audit.problems.join('; ')}\n`)
    figures.push(computeFigures(scenario, run))
  }
  fs.writeFileSync(out, renderReport(scenario, figures))
  process.stderr.write(`wrote ${out} in ${((Date.now() - began) / 1000).toFixed(1)} s\n`)
  for (const f of figures) {
    for (const [name, c] of Object.entries(f.classes)) {
      process.stdout.write(`${f.policy}\t${name}\trequests ${c.requests}\tdone ${c.done}\tunfinished ${c.unfinished}\trefused ${c.refused}\tp50 ${c.waitP50}s\tp95 ${c.waitP95}s\tmax ${c.waitMax}s\tpaid ${c.paid}\tunfunded ${c.unfunded}\tminted ${c.minted}\tearned ${c.earned}\tend ${c.endBalance}\n`)
    }
    process.stdout.write(`${f.policy}\ttotal\trequests ${f.totals.requests}\tminted ${f.totals.minted}\tpaid ${f.totals.generationPaid}\tearned ${f.totals.generationEarned}\tunfunded ${f.totals.unfunded}\taudit ${f.totals.auditOk ? 'clean' : 'PROBLEMS'}\n`)
  }
  return 0
}

main(process.argv.slice(2)).then((code) => process.exit(code), (error) => {
  process.stderr.write(`${error instanceof ScenarioError ? error.message : error?.stack ?? error}\n`)
  process.exit(error instanceof ScenarioError ? 2 : 1)
})
