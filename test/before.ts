// tap's `before` step (package.json): runs once before any test file of a run.
import { removeLeftovers } from './helpers/temp.js'

const removed = await removeLeftovers()
if (removed.length) process.stderr.write(`removed temp folders left by killed test processes: ${removed.join(', ')}\n`)
