// SECURITY.md names every runtime dependency, so a new one cannot slip in unexplained.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ROOT } from '../helpers/root.js'

const doc = readFileSync(`${ROOT}/SECURITY.md`, 'utf8')
const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { dependencies: Record<string, string> }

t.test('every direct runtime dependency is in the table with a reason', async (t) => {
  for (const name of Object.keys(pkg.dependencies)) t.match(doc, new RegExp(`\\| \`${name.replace('/', '\\/')}\` \\| \\w`), name)
})

t.test('every package of the runtime tree is named', async (t) => {
  const tree = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' })
  const names = new Set(tree.trim().split('\n').slice(1).map((p) => p.replace(/.*\/node_modules\//, '')))
  for (const name of names) t.ok(doc.includes(name), `${name} named in SECURITY.md`)
  t.match(doc, new RegExp(`${names.size} packages`), 'and counted')
})
