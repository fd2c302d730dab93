// A listen error in one line (src/doors/reservation.ts): what the kernel said, in words that say what to do.
import t from 'tap'
import { cannotListen } from '../../../src/doors/reservation.js'
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
