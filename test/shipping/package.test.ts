// What a user installs: the packed tarball, installed globally as the README says, gives a working
// `mtls-proxy` with nothing built at install time and nothing warned about, and carries what a package should.
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../helpers/root.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)

t.test('npm pack, then npm install -g of the tarball: the bin runs, nothing warned about', async (t) => {
  const dir = await tempDir(t, 'pack')
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: 120_000 })
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>
  const files = info!.files.map((f) => f.path)
  for (const f of ['LICENSE', 'README.md', 'SECURITY.md', 'package.json', 'dist/cli.js', 'dist/healthcheck.js', 'config/mtls-proxy.service']) t.ok(files.includes(f), `ships ${f}`)
  t.notOk(files.some((f) => f.startsWith('node_modules/')), 'no dependencies inside: npm installs them (the pins in package.json keep them Node 20 clean)')
  t.notOk(files.some((f) => /\.(key|pem)$/.test(f)), 'no key or PEM file')
  t.notOk(files.some((f) => f.startsWith('dist/') && f.endsWith('.map')), 'no source maps pointing at sources it does not ship')
  t.notOk(files.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'no sources, no tests')
  t.notOk(files.some((f) => /^node_modules\/(typescript|tap|tsx|@types)\//.test(f)), 'no dev dependencies')

  const prefix = join(dir, 'global')
  const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(dir, info!.filename)], { timeout: 120_000 })
  t.notMatch(installed.stderr, /EBADENGINE|install-scripts/, `no warnings (${installed.stderr.trim().slice(0, 200)})`)
  const version = await run(join(prefix, 'bin/mtls-proxy'), ['--version'])
  t.match(version.stdout, /^\d+\.\d+\.\d+ /)
  const help = await run(join(prefix, 'bin/mtls-proxy'), ['--help'])
  t.match(help.stdout, /Usage: mtls-proxy/)
})

t.test('package.json names its license, which the LICENSE file holds, and its repository', async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { license: string; repository?: { url: string } }
  t.equal(pkg.license, 'Apache-2.0')
  t.match(await readFile(join(ROOT, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/)
  t.match(pkg.repository?.url, /^git\+https:\/\//)
})
