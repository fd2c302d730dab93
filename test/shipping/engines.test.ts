// Every package the proxy runs with supports every Node.js that package.json's engines promises, so
// an install prints no EBADENGINE warning (light-my-request's cookie@2 once wanted Node >= 22).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import semver from 'semver'
import { ROOT } from '../helpers/root.js'

const promised = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node

t.test(`the runtime tree supports Node.js ${promised}`, async (t) => {
  const tree = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').slice(1)
  t.ok(tree.length > 20, `${tree.length} packages`)
  for (const dir of tree) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; engines?: { node?: string } }
    const wanted = pkg.engines?.node
    if (wanted === undefined) continue
    t.ok(semver.subset(promised, wanted, { includePrerelease: false }), `${pkg.name}@${pkg.version} wants node ${wanted}`)
  }
})
