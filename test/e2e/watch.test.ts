// Long-running responses stream event by event, outlive every timeout, and end upstream when the client goes.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { until } from '../helpers/until.js'

const { pki, files } = await pkiWithFiles(t)

/** An upstream whose watch responses the test drives event by event. */
async function watchUpstream (t: Parameters<typeof startUpstream>[0]) {
  const open: ServerResponse[] = []
  const closed: ServerResponse[] = []
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (!req.url?.includes('watch=')) { res.end('{}'); return }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.flushHeaders()
    open.push(res)
    res.on('close', () => closed.push(res))
  })
  return { upstream, open, closed }
}

function watch (url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => httpRequest(url, resolve).on('error', reject).end())
}

function nextLine (res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => res.once('data', (d: Buffer) => resolve(d.toString())))
}

t.test('watch events arrive one by one, as the upstream sends them', async (t) => {
  const { upstream, open } = await watchUpstream(t)
  const proxy = await startProxy(t, upstream.url, files)
  const res = await watch(`${proxy.url}/api/v1/namespaces/default/pods?watch=1&resourceVersion=10`)
  t.equal(res.statusCode, 200)
  await until(() => open.length === 1)
  for (let i = 1; i <= 5; i++) {
    const line = `{"type":"ADDED","object":{"metadata":{"name":"pod-${i}"}}}\n`
    const received = nextLine(res)
    open[0]!.write(line)
    // the next event is written only after this one arrived: a buffering proxy would hang here
    t.equal(await received, line, `event ${i} arrived on its own`)
  }
  res.destroy()
})

t.test('a watch outlives --response-timeout: only headers are timed, never a body', async (t) => {
  const { upstream, open } = await watchUpstream(t)
  const proxy = await startProxy(t, upstream.url, files, ['--response-timeout', '0.2'])
  const res = await watch(`${proxy.url}/api/v1/pods?watch=true`)
  await until(() => open.length === 1)
  await new Promise((resolve) => setTimeout(resolve, 800))
  const received = nextLine(res)
  open[0]!.write('{"type":"MODIFIED"}\n')
  t.equal(await received, '{"type":"MODIFIED"}\n', 'still streaming after 4× the response timeout')
  res.destroy()
})

t.test('when the client goes away, the upstream request is aborted', async (t) => {
  const { upstream, open, closed } = await watchUpstream(t)
  const proxy = await startProxy(t, upstream.url, files)
  const res = await watch(`${proxy.url}/api/v1/pods?watch=1`)
  await until(() => open.length === 1)
  t.equal(closed.length, 0)
  res.destroy()
  await until(() => closed.length === 1)
  t.pass('upstream saw the watch closed')
  await until(() => proxy.logs.some((l) => l.msg === 'request' && String(l.url).includes('watch=1')))
  const logs = proxy.logs.filter((l) => l.msg === 'request' && String(l.url).includes('watch=1'))
  t.equal(logs.length, 1, 'the aborted watch still gets its access-log line')
})

t.test('kubectl logs --follow style streams behave the same', async (t) => {
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (!req.url?.includes('follow=true')) { res.end('{}'); return }
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('line 1\n')
    req.socket.once('close', () => res.destroy())
    const timer = setInterval(() => res.write('tick\n'), 50)
    res.on('close', () => clearInterval(timer))
  })
  const proxy = await startProxy(t, upstream.url, files)
  const res = await watch(`${proxy.url}/api/v1/namespaces/default/pods/web/log?follow=true&container=app`)
  t.equal(await nextLine(res), 'line 1\n')
  t.equal(await nextLine(res), 'tick\n')
  res.destroy()
  await once(res, 'close')
})
