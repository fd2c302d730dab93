// ARCHITECTURE.md is the map of src/: every module has its row, and every file it names exists.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/root.js'

const doc = readFileSync(join(ROOT, 'ARCHITECTURE.md'), 'utf8')
const src = join(ROOT, 'src')

function modules (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'demo' ? [] : modules(path)
    return name.endsWith('.ts') ? [relative(src, path)] : []
  })
}

t.test('every module of src/ has a row', async (t) => {
  const rows = new Set([...doc.matchAll(/^\| `([^`]+\.ts)` \|/gm)].map((m) => m[1]))
  for (const file of modules(src)) t.ok(rows.has(file) || doc.includes(`\`${file}\``), `${file} is in ARCHITECTURE.md`)
})

t.test('every module it names exists', async (t) => {
  const named = new Set([...doc.matchAll(/`((?:[a-z-]+\/)+[a-z-]+\.(?:ts|cjs))`/g)].map((m) => m[1]!))
  for (const file of named) {
    const path = file.startsWith('src/') || file.startsWith('test/') || file.startsWith('bench/') ? join(ROOT, file) : join(src, file)
    let exists = true
    try { statSync(path) } catch { exists = false }
    t.ok(exists, `${file} exists`)
  }
})
