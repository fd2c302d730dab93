// npm run build: dist/cli.js and dist/healthcheck.js, each one CommonJS file bundling our code and
// the packages it loads at start, so a start reads two files, not three hundred (BENCHMARKS.md has
// what it bought). CommonJS because an ES module importing node:http makes Node.js 24 load its own
// undici for http.WebSocket (+14 MB). pino stays a package: its transports run its files in a
// worker thread. yaml and env-schema are loaded on first use (src/lazy.ts) from node_modules.
// [MINIFY=0] node config/bundle.mjs [--outdir DIR]
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values } = parseArgs({ options: { outdir: { type: 'string', default: join(root, 'dist') } } })
const outdir = values.outdir
const engines = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).engines.node

// `undici` itself (not its files, which the lean entry requires) means src/undici-lean.cjs.
const leanUndici = {
  name: 'lean-undici',
  setup (b) { b.onResolve({ filter: /^undici$/ }, () => ({ path: join(root, 'src/undici-lean.cjs') })) },
}

await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli.ts', healthcheck: 'src/healthcheck.ts' },
  outdir,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: `node${engines.replace(/^>=/, '')}`,
  external: [
    'pino', 'pino-pretty', 'yaml', 'env-schema',
    // required only when a route has a schema (ours have none: server.ts) or by inject(): parsing them
    // at every start cost more than anything they do here
    '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request',
  ],
  // A third less to read and parse at every start (~14 ms and ~1 MB on Node.js 24). Names are
  // kept, so stack traces still say which function; MINIFY=0 gives a file to read.
  minifyWhitespace: process.env.MINIFY !== '0',
  minifySyntax: process.env.MINIFY !== '0',
  plugins: [leanUndici],
  // import.meta.url, as our ES modules use it, for a CommonJS file
  define: { 'import.meta.url': '__import_meta_url' },
  banner: { js: "const __import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
})
await writeFile(join(outdir, 'package.json'), '{ "type": "commonjs" }\n')
