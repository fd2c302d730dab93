import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { once } from 'node:events'
import t from 'tap'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { get, rawRequest, statusLine } from '../helpers/http.js'

const { pki, files } = await pkiWithFiles(t)

t.test('every method, path and query string reaches the upstream unchanged', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files)
  const query = '?labelSelector=app%3Dweb%2Ctier%20in%20(a,b)&fieldSelector=metadata.name=x&limit=5&a=1&a=2&empty=&plus=a+b&raw=%zz'
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const res = await get(`${proxy.url}/api/v1/namespaces/default/pods/My-Pod.x_y~z${query}`, { method, body: method === 'GET' || method === 'OPTIONS' || method === 'DELETE' ? undefined : '{}' })
    t.equal(res.status, 200, method)
    t.equal(res.json().url, `/api/v1/namespaces/default/pods/My-Pod.x_y~z${query}`, `${method} path and query byte-exact`)
    t.equal(res.json().method, method)
  }
  const head = await get(`${proxy.url}/api/v1/pods`, { method: 'HEAD' })
  t.equal(head.status, 200, 'HEAD forwarded')
  t.equal(upstream.calls().at(-1)?.method, 'HEAD')
})

t.test('an upstream base path is kept in front of every request', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, `${upstream.url}/k8s/clusters/c-1`, files)
  const res = await get(`${proxy.url}/api/v1/pods?watch=0`)
  t.equal(res.json().url, '/k8s/clusters/c-1/api/v1/pods?watch=0')
})

t.test('request bodies of every content type are forwarded byte for byte', async (t) => {
  const upstream = await startUpstream(t, pki, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' })
      res.end(Buffer.concat(chunks))
    })
  })
  const proxy = await startProxy(t, upstream.url, files)
  const bodies: Array<[string, Buffer]> = [
    ['application/json', Buffer.from('{"kind":"Pod","metadata":{"name":"x"}}')],
    ['application/merge-patch+json', Buffer.from('{"metadata":{"labels":{"a":"b"}}}')],
    ['application/json-patch+json', Buffer.from('[{"op":"add","path":"/metadata/labels/a","value":"b"}]')],
    ['application/strategic-merge-patch+json', Buffer.from('{"spec":{"containers":[{"name":"a","image":"b"}]}}')],
    ['application/apply-patch+yaml', Buffer.from('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n')],
    ['application/vnd.kubernetes.protobuf', Buffer.concat([Buffer.from('k8s\u0000'), randomBytes(300)])],
    ['text/plain; charset=utf-8', Buffer.from('héllo')],
  ]
  for (const [type, body] of bodies) {
    const res = await get(`${proxy.url}/api/v1/namespaces/default/configmaps/x`, { method: 'PATCH', headers: { 'content-type': type }, body })
    t.equal(res.status, 200, type)
    t.equal(res.headers['content-type'], type, `${type}: content type kept`)
    t.same(res.bytes, body, `${type}: the body the upstream echoed is the body sent`)
  }
  // protobuf round trip compared exactly, as bytes
  const proto = bodies[5]![1]
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const req = httpRequest(`${proxy.url}/api/v1/x`, { method: 'POST', headers: { 'content-type': 'application/vnd.kubernetes.protobuf' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks)))
    })
    req.on('error', reject)
    req.end(proto)
  })
  t.same(raw, proto, 'protobuf body identical')
  const none = await get(`${proxy.url}/api/v1/namespaces/default/pods/x`, { method: 'DELETE' })
  t.equal(none.status, 200, 'a request without a body passes')
})

t.test('headers: Host rewritten, hop-by-hop and caller credentials dropped, Impersonate kept', async (t) => {
  const upstream = await startUpstream(t, pki, (req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json',
      connection: 'keep-alive, x-upstream-hop',
      'keep-alive': 'timeout=5',
      'x-upstream-hop': 'drop me',
      'proxy-authenticate': 'Basic',
      upgrade: 'h2c',
      trailer: 'x-t',
      'audit-id': 'abc',
      'set-cookie': ['a=1', 'b=2'],
    })
    res.end('{}')
  })
  const proxy = await startProxy(t, upstream.url, files)
  const answer = await rawRequest(proxy.port, [
    'GET /api/v1/pods HTTP/1.1',
    `Host: 127.0.0.1:${proxy.port}`,
    'Authorization: Bearer secret-token-of-someone',
    'Proxy-Authorization: Basic c2VjcmV0',
    'Impersonate-User: jane',
    'Impersonate-Group: developers',
    'Impersonate-Extra-Scopes: view',
    'Connection: close, X-Hop-Header',
    'X-Hop-Header: drop',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Trailer: X-T',
    'Proxy-Connection: keep-alive',
    'X-Forwarded-For: 6.6.6.6',
    'X-Forwarded-Proto: https',
    'Forwarded: for=6.6.6.6',
    'Cookie: c=1',
    'User-Agent: kubectl/v1.32.0',
    'Accept: application/json;as=Table;v=v1;g=meta.k8s.io',
    '', '',
  ].join('\r\n'))
  t.equal(statusLine(answer), 200)
  const seen = upstream.calls()[0]!.headers
  t.equal(seen.host, `127.0.0.1:${upstream.port}`, 'Host is the upstream')
  t.equal(seen.authorization, undefined, 'Authorization not forwarded')
  t.equal(seen['proxy-authorization'], undefined, 'Proxy-Authorization not forwarded')
  t.equal(seen['impersonate-user'], 'jane')
  t.equal(seen['impersonate-group'], 'developers')
  t.equal(seen['impersonate-extra-scopes'], 'view')
  for (const hop of ['x-hop-header', 'keep-alive', 'te', 'trailer', 'proxy-connection', 'forwarded']) {
    t.equal(seen[hop], undefined, `${hop} not forwarded`)
  }
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the real caller, not what it claimed')
  t.equal(seen['x-forwarded-proto'], 'http')
  t.equal(seen['user-agent'], 'kubectl/v1.32.0')
  t.equal(seen.accept, 'application/json;as=Table;v=v1;g=meta.k8s.io')
  t.equal(seen.cookie, 'c=1')
  const head = answer.split('\r\n\r\n')[0]!.toLowerCase()
  t.notMatch(head, /x-upstream-hop|proxy-authenticate|upgrade:|trailer:|keep-alive: timeout=5/, 'hop-by-hop response headers removed')
  t.match(head, /audit-id: abc/)
  t.match(head, /set-cookie: a=1\r\nset-cookie: b=2/, 'repeated headers kept')
})

t.test('Expect: 100-continue is answered by the proxy and the body still arrives', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files)
  const body = 'x'.repeat(2048)
  const answer = await rawRequest(proxy.port, [
    'POST /api/v1/namespaces/default/configmaps HTTP/1.1', `Host: localhost:${proxy.port}`,
    'Content-Type: application/json', `Content-Length: ${body.length}`, 'Expect: 100-continue', 'Connection: close', '', body,
  ].join('\r\n'))
  t.match(answer, /^HTTP\/1\.1 100 Continue/)
  t.match(answer, /HTTP\/1\.1 200 OK/)
  t.match(answer, /"bodyLength":2048/)
  t.equal(upstream.calls()[0]?.headers.expect, undefined)
})

t.test('50 MB up and down, intact, streamed without buffering', async (t) => {
  const size = 50 * 1024 * 1024
  const chunk = randomBytes(1024 * 1024)
  let firstUploadChunk!: () => void
  const uploadStarted = new Promise<void>((resolve) => { firstUploadChunk = resolve })
  let releaseDownload!: () => void
  const downloadMayContinue = new Promise<void>((resolve) => { releaseDownload = resolve })
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (req.method === 'PUT') {
      const hash = createHash('sha256')
      let length = 0
      req.on('data', (c: Buffer) => { hash.update(c); length += c.length; firstUploadChunk() })
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ length, sha256: hash.digest('hex') })) })
      return
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    res.write(chunk)
    // The rest is sent only once the client has the first megabyte: a buffering proxy would hang here.
    void downloadMayContinue.then(() => {
      for (let i = 1; i < 50; i++) res.write(chunk)
      res.end()
    })
  })
  const proxy = await startProxy(t, upstream.url, files)

  // upload: the upstream must see data before the client has sent most of it
  const sent = createHash('sha256')
  const uploaded = await new Promise<{ length: number; sha256: string }>((resolve, reject) => {
    const req = httpRequest(`${proxy.url}/upload`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let text = ''
      res.on('data', (d) => { text += d })
      res.on('end', () => resolve(JSON.parse(text)))
    })
    req.on('error', reject)
    req.write(chunk)
    sent.update(chunk)
    void uploadStarted.then(async () => {
      for (let i = 1; i < 50; i++) {
        sent.update(chunk)
        if (!req.write(chunk)) await once(req, 'drain')
      }
      req.end()
    })
  })
  t.equal(uploaded.length, size, 'upload length')
  t.equal(uploaded.sha256, sent.digest('hex'), 'upload sha256')

  const received = createHash('sha256')
  const expected = createHash('sha256')
  for (let i = 0; i < 50; i++) expected.update(chunk)
  const downloaded = await new Promise<number>((resolve, reject) => {
    httpRequest(`${proxy.url}/download`, (res) => {
      let length = 0
      res.on('data', (c: Buffer) => {
        received.update(c)
        length += c.length
        if (length >= chunk.length) releaseDownload()
      })
      res.on('end', () => resolve(length))
    }).on('error', reject).end()
  })
  t.equal(downloaded, size, 'download length')
  t.equal(received.digest('hex'), expected.digest('hex'), 'download sha256')
})

t.test('no retries: a 503 from the upstream is passed on once', async (t) => {
  const upstream = await startUpstream(t, pki, (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' })
    res.end('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"etcd is down","reason":"ServiceUnavailable","code":503}')
  })
  const proxy = await startProxy(t, upstream.url, files)
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 503)
  t.equal(res.json().message, 'etcd is down', 'upstream Status passes through untouched')
  t.equal(upstream.calls().filter((r) => r.url === '/api/v1/pods').length, 1, 'exactly one upstream request')
})

t.test('upstream Status bodies for errors pass untouched', async (t) => {
  const status = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"x\\" is forbidden","reason":"Forbidden","details":{"name":"x","kind":"pods"},"code":403}'
  const upstream = await startUpstream(t, pki, (_req, res) => {
    res.writeHead(403, { 'content-type': 'application/json' })
    res.end(status)
  })
  const proxy = await startProxy(t, upstream.url, files)
  const res = await get(`${proxy.url}/api/v1/namespaces/default/pods/x`)
  t.equal(res.status, 403)
  t.equal(res.body, status)
})
