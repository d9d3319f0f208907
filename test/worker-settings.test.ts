import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { closestModel, normalizeModel } from '../scripts/worker/checks.js'
import { mergeSettings, readConfigFile } from '../scripts/worker/config.js'
import { tempDir } from './helpers/harness.js'

const REGISTRY = ['demo/tiny', 'koboldcpp/LLaMA2-13B-Tiefighter', 'koboldcpp/Llama-3-8B', 'koboldcpp/Mistral-7B-Instruct']

t.test('the closest registered model name', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['koboldcpp/LLaMA2-13B-Tiefighter.Q4_K_S', 'koboldcpp/LLaMA2-13B-Tiefighter'],
    ['LLaMA2-13B-Tiefighter.Q5_K_M.gguf', 'koboldcpp/LLaMA2-13B-Tiefighter'],
    ['koboldcpp/llama-3-8b', 'koboldcpp/Llama-3-8B'],
    ['koboldcpp/Mistral-7B-Instruct-GGUF', 'koboldcpp/Mistral-7B-Instruct'],
    ['something/else-entirely-70B', undefined],
  ]
  for (const [name, want] of cases) t.equal(closestModel(name, REGISTRY), want, name)
  t.equal(normalizeModel('koboldcpp/LLaMA2-13B-Tiefighter.Q4_K_S'), 'llama2-13b-tiefighter')
})

t.test('a bridgeData-style file, the flags over it, and bad values refused', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'bridgeData.yaml')
  fs.writeFileSync(file, 'horde_url: "http://h:1"\napi_key: k\nworker_name: w\nmodels_to_serve: a/b\nmax_threads: 2\npriority_usernames: [x, y]\nqueue_size: 1\n')
  const { settings, ignored } = readConfigFile(file)
  t.same(settings, { url: 'http://h:1', key: 'k', name: 'w', models: ['a/b'], threads: 2, priorityUsers: ['x', 'y'] })
  t.same(ignored, ['queue_size'])
  t.same(mergeSettings(settings, { name: 'flag-name', threads: undefined }), { ...settings, name: 'flag-name' }, 'a flag given wins, one not given leaves the file')
  fs.writeFileSync(file, 'max_length: -3\n')
  t.throws(() => readConfigFile(file), /max_length must be a positive integer/)
  fs.writeFileSync(file, 'models_to_serve: [1, 2]\n')
  t.throws(() => readConfigFile(file), /models_to_serve must be a list of names/)
  t.throws(() => readConfigFile(path.join(dir, 'missing.yaml')), /cannot read the config file/)
})
