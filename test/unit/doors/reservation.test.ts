// The reservation of a port (src/doors/reservation.ts): a listen error in one line, in words that say
// what to do, and the connections held while the proxy starts.
import { connect, createServer } from 'node:net'
import t from 'tap'
import { cannotListen, reserve } from '../../../src/doors/reservation.js'
import { UsageError } from '../../../src/util/errors.js'

const failure = (code: string) => Object.assign(new Error(`listen ${code}: something 127.0.0.1:8001`), { code })

t.test('each listen error, said for where it happened', async (t) => {
  const cases: Array<[Error, string]> = [
    [failure('EADDRINUSE'), 'cannot listen on 127.0.0.1:8001: address already in use (is another proxy running? choose another --port)'],
    [failure('EACCES'), 'cannot listen on 127.0.0.1:8001: permission denied (ports below 1024 need privileges)'],
    [failure('EADDRNOTAVAIL'), 'cannot listen on 127.0.0.1:8001: this machine has no such address'],
    [failure('EMFILE'), 'cannot listen on 127.0.0.1:8001: listen EMFILE: something 127.0.0.1:8001'],
  ]
  for (const [err, message] of cases) {
    const said = cannotListen('127.0.0.1:8001', err)
    t.type(said, UsageError, String((err as NodeJS.ErrnoException).code))
    t.equal(said.message, message)
  }
  const already = new UsageError('--unix-socket /run/x.sock is in use by a running process (another mtls-proxy?)')
  t.equal(cannotListen('/run/x.sock', already), already, 'a mistake already said is kept as it is')
})

t.test('a full reservation makes room: the connection held longest is closed, the new one waits', async (t) => {
  // A free port, then reserved as the proxy reserves its own.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as { port: number }).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const reservation = (await reserve('127.0.0.1', port, 3))!
  t.teardown(() => reservation.close())
  const open = async () => {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    return { socket, closed }
  }
  const sockets = []
  // One at a time: the reservation sees them in this order.
  for (let i = 0; i < 3; i++) {
    sockets.push(await open())
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const fourth = await open()
  await sockets[0]!.closed
  t.pass('the first, held longest, was closed for the fourth')
  const handed = reservation.release()
  t.equal(handed.length, 3, 'three are held for the server: the second, third and fourth')
  for (const s of handed) s.destroy()
  for (const s of [...sockets, fourth]) s.socket.destroy()
})
