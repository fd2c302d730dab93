// --help (src/settings/help.ts): every setting once, in its section, wrapped to the width it is given.
import t from 'tap'
import { helpText, wrap } from '../../../src/settings/help.js'
import { GROUPS, OPTIONS, envName, type OptionSpec } from '../../../src/settings/options.js'

t.test('wrap: words into lines of at most the width, a word longer than a line alone on its own', async (t) => {
  const cases: Array<[string, number, string, string, string[]]> = [
    ['a b c', 80, '  ', '  ', ['  a b c']],
    ['aaa bbb ccc', 9, '  ', '  ', ['  aaa bbb', '  ccc']],
    ['aaa bbb ccc', 7, '    ', '', ['aaa bbb', '    ccc']], // a first line of its own indent
    ['x ^localhost$,^127\\.0\\.0\\.1$ y', 10, ' ', ' ', [' x', ' ^localhost$,^127\\.0\\.0\\.1$', ' y']],
    ['', 10, '  ', '  ', ['  ']],
  ]
  for (const [text, width, indent, first, lines] of cases) t.same(wrap(text, width, indent, first), lines, `${text} in ${width}`)
})

t.test('every setting once, under its section\'s title, sections in order', async (t) => {
  const help = helpText('1.2.3', 100)
  const titles = Object.values(GROUPS).map((title) => help.indexOf(`\n${title}:\n`))
  t.ok(titles.every((at, i) => at > 0 && (i === 0 || at > titles[i - 1]!)), 'sections in order')
  for (const o of OPTIONS as readonly OptionSpec[]) {
    const head = o.noFlag ? `\n  ${envName(o.name)}\n` : `  ${o.short ? `-${o.short}, ` : ''}--${o.name}${o.type === 'boolean' ? '' : ` ${o.value ?? 'VALUE'}`}`
    const at = help.indexOf(head, titles[0])
    t.ok(at > 0 && help.indexOf(head, at + 1) < 0, `${o.name} once`)
    const section = Object.keys(GROUPS).findIndex((g) => g === o.group)
    t.ok(at > titles[section]! && (titles[section + 1] === undefined || at < titles[section + 1]!), `${o.name} under ${GROUPS[o.group]}`)
  }
  t.match(help, /^ {2}-s, --upstream URL \(kubectl's --server\) +env MTLS_PROXY_UPSTREAM$/m, 'the short form and kubectl\'s names with the flag')
})

t.test('within the width given, whatever it is; never narrower than 40', async (t) => {
  for (const width of [40, 60, 80, 100, 132]) {
    const long = helpText('1.2.3', width).split('\n').filter((l) => l.length > width && !/^ *\S+$/.test(l))
    t.same(long, [], `${width} columns`)
  }
  const narrow = helpText('1.2.3', 10).split('\n').filter((l) => l.length > 40 && !/^ *\S+$/.test(l))
  t.same(narrow, [], 'a tiny terminal gets 40 columns')
  t.match(helpText('1.2.3', 100), /^ {6}\S/m, 'text indented under its flag')
})
