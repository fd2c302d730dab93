// The demo's small rules (src/demo/): its port read from the arguments.
import t from 'tap'
import { portArgument } from '../../../src/demo/port.js'

t.test('the port, taken out of the arguments passed on to mtls-proxy', async (t) => {
  const cases: Array<[string[], number | RegExp, string[]]> = [
    [[], 8001, []],
    [['--port', '9000'], 9000, []],
    [['--port=9000', '--log-level', 'debug'], 9000, ['--log-level', 'debug']],
    [['--port', '0'], 0, []],
    [['--port', '9000', '--port', '9001'], 9001, []],
    [['--port', 'abc'], /--port must be a number from 0 to 65535, got 'abc'/, []],
    [['--port', '70000'], /got '70000'/, []],
    [['--port'], /got ''/, []],
  ]
  for (const [args, port, rest] of cases) {
    const read = portArgument(args)
    if (port instanceof RegExp) t.match(read.port, port, args.join(' '))
    else t.equal(read.port, port, args.join(' ') || '(none)')
    t.same(read.rest, rest)
  }
})
