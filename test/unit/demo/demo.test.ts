// The demo's small rules (src/demo/): its port read from the arguments, and a rolling set of pods.
import t from 'tap'
import { portArgument } from '../../../src/demo/port.js'
import { KEEP, tick } from '../../../src/demo/ticker.js'

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

t.test('a pod added every tick, the oldest deleted past KEEP: a bounded set', async (t) => {
  t.equal(KEEP, 3)
  t.same([1, 2, 3, 4, 5].map((n) => tick(n)), [
    { add: 'demo-1', remove: undefined },
    { add: 'demo-2', remove: undefined },
    { add: 'demo-3', remove: undefined },
    { add: 'demo-4', remove: 'demo-1' },
    { add: 'demo-5', remove: 'demo-2' },
  ])
  const live = new Set<string>()
  for (let n = 1; n <= 100; n++) {
    const { add, remove } = tick(n)
    live.add(add)
    if (remove) live.delete(remove)
    t.ok(live.size <= KEEP, `after ${n}: ${live.size} pods`)
  }
})
