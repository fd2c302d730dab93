// Which requests stream until stopped (src/admission/long-running.ts): what the API server reads as a
// watch or a follow, so they get no response timeout and are ended at shutdown.
import t from 'tap'
import { isLongRunning } from '../../../src/admission/long-running.js'

t.test('what counts as a watch: what the API server reads as true (anything but 0 or false)', async (t) => {
  for (const query of ['watch=1', 'watch=true', 'watch=True', 'watch=yes', 'watch=', 'watch', 'limit=5&watch', 'follow=on', 'watch=1&watch=0']) {
    t.ok(isLongRunning(`/api/v1/namespaces/default/pods/web/log?${query}`), `?${query}`)
  }
  for (const path of ['/apis/apps/v1/watch/deployments', '/api/v1/watch/pods', '/api/v1/watch/namespaces/default/pods/web']) t.ok(isLongRunning(path), `the old /watch/ paths: ${path}`)
  for (const path of ['/api/v1/namespaces/watch/pods', '/apis/apps/v1/deployments/watch', '/watch/api/v1/pods', '/api/v1/pods']) t.notOk(isLongRunning(path), `${path} is not`)
  // Read decoded, as the API server reads them; a pair it cannot read does not count, nor does a pair with a semicolon.
  for (const query of ['%77atch=1', 'w%61tch', 'fol%6Cow=true', 'watch=%74rue', 'labelSelector=app%3Dweb&watch=1', 'watch=%zz&watch=1',
    'watch=1;x=2&watch=1', 'watch=%FF', 'watch=%FF&watch=false']) {
    t.ok(isLongRunning(`/api/v1/pods?${query}`), `?${query}`)
  }
  for (const query of ['watch=0', 'watch=false', 'watch=FALSE', 'follow=0&watch=false', 'watch=0&watch=1', 'watchdog=1', 'xwatch=1', '',
    'watch=%30', '%77atch=fals%65', 'watch=%30&%77atch=1', 'labelSelector=app%3Dweb', 'watch=%zz', 'watch=%4', 'watch=1;x=2', 'watch+=1']) {
    t.notOk(isLongRunning(`/api/v1/pods?${query}`), `?${query} is not`)
  }
})
