'use strict'
// What `require('undici')` means inside dist/ (config/bundle.mjs): undici's dispatchers, their
// request API and their connector, which is all mtls-proxy and @fastify/reply-from use. undici's
// index also loads fetch, WebSocket, EventSource, the cache and the mocks; here that was ~10 MB of
// memory and ~60 ms of every start.
const Dispatcher = require('undici/lib/dispatcher/dispatcher')
Object.assign(Dispatcher.prototype, require('undici/lib/api'))

module.exports = {
  Dispatcher,
  Client: require('undici/lib/dispatcher/client'),
  Pool: require('undici/lib/dispatcher/pool'),
  BalancedPool: require('undici/lib/dispatcher/balanced-pool'),
  Agent: require('undici/lib/dispatcher/agent'),
  getGlobalDispatcher: require('undici/lib/global').getGlobalDispatcher,
  buildConnector: require('undici/lib/core/connect'),
  errors: require('undici/lib/core/errors'),
}
// reply-from asks for these only when told to use a forward proxy: loaded then.
Object.defineProperty(module.exports, 'ProxyAgent', { enumerable: true, get: () => require('undici/lib/dispatcher/proxy-agent') })
