// npm run build: dist/cli.js and dist/healthcheck.js, each one CommonJS file bundling our code and
// the packages it loads at start, so a start reads two files, not three hundred (BENCHMARKS.md has
// what it bought). CommonJS because an ES module importing node:http makes Node.js 24 load its own
// undici for http.WebSocket (+14 MB). pino stays a package: its transports run its files in a
// worker thread. yaml and env-schema are loaded on first use (src/util/lazy.ts) from node_modules.
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

// `undici` itself (not its files, which the lean entry requires) means src/util/undici-lean.cjs.
const leanUndici = {
  name: 'lean-undici',
  setup (b) { b.onResolve({ filter: /^undici$/ }, () => ({ path: join(root, 'src/util/undici-lean.cjs') })) },
}

// Modules a dependency requires at load but uses only for what mtls-proxy never asks of it: each
// is bundled behind a stand-in that loads it on first use (test/bundle.test.ts checks they stay
// unloaded). prom-client: OpenTelemetry, for exemplars (none here; ~5 ms of every start), and
// node:zlib, for its Pushgateway client (~5 ms on Node.js 24). @fastify/http-proxy: ws, for its
// WebSocket mode (upgrades are ours: src/forwarding/tunnels.ts). Fastify: node:dns, to resolve a host name to
// listen on (ours are addresses). undici, reply-from and Fastify: node:http2, for HTTP/2 upstream or
// listener (neither here; ~15 ms and ~4 MB on Node.js 24).
const LOADED_ON_USE = {
  '@opentelemetry/api': ['/node_modules/prom-client/'],
  ws: ['/node_modules/@fastify/http-proxy/'],
  zlib: ['/node_modules/prom-client/lib/pushgateway.js'],
  dns: ['/node_modules/fastify/lib/server.js'],
  http2: ['/node_modules/undici/', '/node_modules/@fastify/reply-from/', '/node_modules/fastify/lib/server.js'],
}
// What importers read at load, so their stand-ins must answer without loading: the Pushgateway
// takes gzipSync out of node:zlib (a function that loads the module when called), and undici and
// reply-from read node:http2's constants (fixed by RFC 9113 and nghttp2: a copy made at build time).
const AT_LOAD = {
  zlib: { get: 'function (...args) { return load()[key].apply(this, args) }' },
  http2: {
    before: `const constants = Object.freeze(${JSON.stringify((await import('node:http2')).constants)});`,
    get: "key === 'constants' ? constants : load()[key]",
  },
}
const onFirstUse = {
  name: 'on-first-use',
  setup (b) {
    const names = new RegExp(`^(?:node:)?(${Object.keys(LOADED_ON_USE).map((n) => n.replace(/[/.]/g, '\\$&')).join('|')})$`)
    b.onResolve({ filter: names }, (args) => {
      const name = args.path.replace(/^node:/, '')
      return LOADED_ON_USE[name].some((p) => args.importer.includes(p)) ? { path: name, namespace: 'on-first-use' } : undefined
    })
    b.onLoad({ filter: /.*/, namespace: 'on-first-use' }, (args) => {
      const { before = '', get = 'load()[key]' } = AT_LOAD[args.path] ?? {}
      return {
        resolveDir: root,
        contents: `let loaded; const load = () => (loaded ??= require(${JSON.stringify(args.path)}));
${before}
module.exports = new Proxy(function () {}, {
  get: (_, key) => (${get}),
  has: (_, key) => key in load(),
  construct: (_, args) => new (load())(...args),
  apply: (_, self, args) => load().apply(self, args),
});`,
      }
    })
  },
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
    // required only when a route has a schema (ours have none: doors/servers.ts) or by inject(): parsing them
    // at every start cost more than anything they do here
    '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request',
  ],
  // A third less to read and parse at every start (~14 ms and ~1 MB on Node.js 24). Names are
  // kept, so stack traces still say which function; MINIFY=0 gives a file to read.
  minifyWhitespace: process.env.MINIFY !== '0',
  minifySyntax: process.env.MINIFY !== '0',
  plugins: [leanUndici, onFirstUse],
  // import.meta.url, as our ES modules use it, for a CommonJS file
  define: { 'import.meta.url': '__import_meta_url' },
  banner: { js: "const __import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
})
await writeFile(join(outdir, 'package.json'), '{ "type": "commonjs" }\n')
