// tap's `before` step (package.json): runs once before any test file of a run.
import { buildBundle } from './helpers/dist.js'
import { removeLeftovers } from './helpers/temp.js'

const removed = await removeLeftovers()
if (removed.length) process.stderr.write(`removed temp folders left by killed test processes: ${removed.join(', ')}\n`)
// Built whether or not it looks fresh: a change in node_modules changes it too, and no file date says so.
await buildBundle()
