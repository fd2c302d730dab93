// The CONNECT proxy on the way (src/upstream/connect-proxy.ts), chosen as kubectl chooses it: a
// kubeconfig's proxy-url, else HTTPS_PROXY unless NO_PROXY (Go's rules) exempts the server.
import t from 'tap'
import { displayProxy, exempt, proxyEnvironment, proxyFor, withoutUserinfo } from '../../../src/upstream/connect-proxy.js'

t.test('HTTPS_PROXY and NO_PROXY, as kubectl honours them; socks5 said in one line', async (t) => {
  const env = { httpsProxy: 'proxy.corp:3128', noProxy: '.internal,10.0.0.0/8,api.example.com,*.svc,[::2]:6443' }
  const via = (url: string) => proxyFor(new URL(url), undefined, env)?.href
  t.equal(via('https://k8s.example.org:6443'), 'http://proxy.corp:3128/', 'a bare host:port is an http:// proxy')
  t.equal(via('https://127.0.0.1:6443'), undefined, 'loopback is never proxied')
  t.equal(via('https://localhost:6443'), undefined)
  t.equal(via('https://a.internal:6443'), undefined, 'a leading dot: subdomains')
  t.equal(via('https://10.1.2.3:6443'), undefined, 'a CIDR')
  t.equal(via('https://11.1.2.3:6443'), 'http://proxy.corp:3128/')
  t.equal(via('https://api.example.com'), undefined, 'a name and')
  t.equal(via('https://eu.api.example.com'), undefined, 'its subdomains')
  t.equal(via('https://x.svc'), undefined, '*. as a leading dot')
  t.equal(via('https://[::2]:6443'), undefined, 'an IPv6 address with its port')
  t.equal(via('https://[::2]:443'), 'http://proxy.corp:3128/', 'not on another port')
  t.equal(proxyFor(new URL('https://k8s.example.org'), 'https://kube-proxy.corp', env)?.href, 'https://kube-proxy.corp/', 'proxy-url beats HTTPS_PROXY')
  t.throws(() => proxyFor(new URL('https://k8s.example.org'), 'socks5://127.0.0.1:1080', env), { message: /^kubeconfig proxy-url: socks5 proxies are not supported by mtls-proxy; use an http:\/\/ or https:\/\/ \(CONNECT\) proxy$/ })
})

t.test('NO_PROXY entries as Go reads them', async (t) => {
  const cases: Array<[string, string, string, boolean]> = [
    // [host, port, NO_PROXY, exempt]
    ['anything', '443', '*', true],
    ['example.com', '443', 'example.com', true],
    ['api.example.com', '443', 'example.com', true],
    ['notexample.com', '443', 'example.com', false],
    ['example.com.evil.org', '443', 'example.com', false],
    ['example.com', '443', '.example.com', false],
    ['a.example.com', '443', '.example.com', true],
    ['a.example.com', '443', '*.example.com', true],
    ['api.example.com', '443', 'API.Example.COM', true],
    ['api.example.com', '6443', 'api.example.com:6443', true],
    ['api.example.com', '443', 'api.example.com:6443', false],
    ['10.1.2.3', '443', '10.0.0.0/8', true],
    ['11.1.2.3', '443', '10.0.0.0/8', false],
    ['ten.example', '443', '10.0.0.0/8', false],
    ['10.1.2.3', '443', '10.0.0.0/99', false],
    ['fd12::1', '443', 'fd00::/8', true],
    ['fd00::1', '443', 'FD00:0:0::1', true],
    ['fd00::1', '6443', '[fd00::1]:6443', true],
    ['10.0.0.1', '443', '10.0.0.10', false],
    ['example.com', '443', '', false],
    ['example.com', '443', ' , ,', false],
    ['b.example.com', '443', 'a.example.com, b.example.com', true],
  ]
  for (const [host, port, noProxy, expected] of cases) t.equal(exempt(host, port, noProxy), expected, `${host}:${port} with NO_PROXY '${noProxy}'`)
})

t.test('the environment: upper case first, lower case as Go reads it, empty as unset', async (t) => {
  t.same(proxyEnvironment({ HTTPS_PROXY: 'a:1', NO_PROXY: 'b' }), { httpsProxy: 'a:1', noProxy: 'b' })
  t.same(proxyEnvironment({ https_proxy: 'a:1', no_proxy: 'b' }), { httpsProxy: 'a:1', noProxy: 'b' })
  t.same(proxyEnvironment({ HTTPS_PROXY: '', https_proxy: 'a:1' }), { httpsProxy: 'a:1', noProxy: undefined })
  t.same(proxyEnvironment({ HTTP_PROXY: 'a:1' }), { httpsProxy: undefined, noProxy: undefined }, 'HTTP_PROXY is not for an https:// server')
  t.equal(proxyFor(new URL('https://k8s.example.org'), undefined, { httpsProxy: undefined, noProxy: undefined }), undefined, 'none set: a direct connection')
  t.equal(proxyFor(new URL('https://127.0.0.5:6443'), undefined, { httpsProxy: 'p:1', noProxy: undefined }), undefined, 'all of 127/8 is loopback')
  t.equal(proxyFor(new URL('https://[::1]:6443'), undefined, { httpsProxy: 'p:1', noProxy: undefined }), undefined)
})

t.test('a proxy as messages and logs show it: never its user name or password', async (t) => {
  t.equal(displayProxy(new URL('http://jane:s3cret@proxy.corp:3128')), 'http://proxy.corp:3128')
  const shown: Array<[string, string]> = [
    ['http://jane:s3cret@proxy.corp:3128', 'http://…@proxy.corp:3128'],
    ['jane:s3/cret@proxy.corp:3128', '…@proxy.corp:3128'],
    ['http://jane:s3@cret@proxy:99999', 'http://…@proxy:99999'],
    ['http://proxy.corp:3128', 'http://proxy.corp:3128'],
  ]
  for (const [text, display] of shown) t.equal(withoutUserinfo(text), display, display)
})
