import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { loadModelRegistry } from '../src/economy/models.js'
import { tempDir } from './helpers/harness.js'

function registryFile(content: unknown): string {
  const file = path.join(tempDir('horde-models-'), 'models.json')
  fs.writeFileSync(file, JSON.stringify(content))
  return file
}

t.test('templates: exact names win, then the first matching pattern, case-insensitively', async (t) => {
  const registry = loadModelRegistry(registryFile({
    models: { 'a/Llama-3-8B': 8 },
    templates: { $comment: 'ignored', 'a/Llama-3-8B': 'chatml', '*llama-3*': 'llama3', '*LLAMA*': 'llama2', '*': 'alpaca' },
  }))
  t.equal(registry.templateOf('a/Llama-3-8B'), 'chatml', 'the exact entry, though a pattern matches too')
  t.equal(registry.templateOf('koboldcpp/llama-3-70B'), 'llama3', 'the first pattern in file order')
  t.equal(registry.templateOf('x/Llama2-13B'), 'llama2', 'patterns ignore case')
  t.equal(registry.templateOf('x/other.model'), 'alpaca', '* matches anything')
  t.equal(registry.sizeOf('a/Llama-3-8B'), 8, 'sizes are unchanged')
  t.same([...registry.templateNames].sort(), ['alpaca', 'chatml', 'llama2', 'llama3'], 'the names used, for the start-up check')
})

t.test('a pattern is literal apart from *', async (t) => {
  const registry = loadModelRegistry(registryFile({ models: {}, templates: { 'a.b(c)*': 'gemma' } }))
  t.equal(registry.templateOf('a.b(c)-2'), 'gemma')
  t.equal(registry.templateOf('axb(c)-2'), undefined, 'a dot is a dot')
})

t.test('no templates section: no template named', async (t) => {
  t.equal(loadModelRegistry(registryFile({ models: { m: 1 } })).templateOf('m'), undefined)
})

t.test('bad templates sections are refused with the file named', async (t) => {
  t.throws(() => loadModelRegistry(registryFile({ models: {}, templates: ['chatml'] })), /"templates" must be an object/)
  t.throws(() => loadModelRegistry(registryFile({ models: {}, templates: { m: 3 } })), /template of m must be a template name/)
  t.throws(() => loadModelRegistry(registryFile({ models: {}, templates: { m: 'Chat ML' } })), /template of m/)
})

t.test('the shipped registry names a template for every model it lists', async (t) => {
  const registry = loadModelRegistry(new URL('../config/models.json', import.meta.url).pathname)
  t.equal(registry.templateOf('koboldcpp/Llama-3-8B'), 'llama3')
  t.equal(registry.templateOf('aphrodite/Mistral-Nemo-12B'), 'mistral')
  t.equal(registry.templateOf('koboldcpp/Mixtral-8x7B'), 'mistral')
  t.equal(registry.templateOf('koboldcpp/LLaMA2-13B-Tiefighter'), 'alpaca', 'Llama 2 merges fall to the default')
  for (const name of registry.names) t.ok(registry.templateOf(name), `${name} has a template`)
})
