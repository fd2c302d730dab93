// tap's `after` step (package.json): runs once after every test file of a run has ended.
import { removeLeftovers } from './helpers/temp.js'

const removed = await removeLeftovers()
if (removed.length) process.stderr.write(`removed temp folders left by test processes killed in this run: ${removed.join(', ')}\n`)
