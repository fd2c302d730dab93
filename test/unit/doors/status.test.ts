// Which targets kubectl's discovery reads as text (src/doors/status.ts): the two roots, with or
// without a slash or query, and nothing below them.
import t from 'tap'
import { isDiscoveryRoot } from '../../../src/doors/status.js'

t.test('the discovery roots, /api and /apis, and nothing else', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['/api', true], ['/apis', true], ['/api/', true], ['/apis/', true], ['/api?timeout=32s', true], ['/apis/?timeout=32s', true],
    ['/api/v1', false], ['/apis/apps', false], ['/apix', false], ['/version', false], ['/', false], ['/clusters/prod/api', false],
  ]
  for (const [url, root] of cases) t.equal(isDiscoveryRoot(url), root, url)
})
