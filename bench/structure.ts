// npm run structure: the figures ARCHITECTURE.md quotes about the code's shape, from the code itself:
// lines of TypeScript in src/, files per folder, and the longest functions.
// node --import tsx bench/structure.ts [--top N] [DIR]
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import ts from 'typescript'

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '10' } }, allowPositionals: true })
const root = positionals[0] ?? join(import.meta.dirname, '..')
const src = join(root, 'src')

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : /\.[cm]?ts$|\.cjs$/.test(name) ? [path] : []
  })
}

interface Fn { name: string, file: string, lines: number }
function functions (file: string): Fn[] {
  const text = readFileSync(file, 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: Fn[] = []
  const visit = (node: ts.Node, owner: string): void => {
    let name = owner
    if (ts.isClassDeclaration(node) && node.name) name = node.name.text
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const named = node.name && (ts.isIdentifier(node.name) || ts.isPrivateIdentifier(node.name))
        ? node.name.text
        : ts.isVariableDeclaration(node.parent) && ts.isIdentifier(node.parent.name) ? node.parent.name.text : undefined
      if (named) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart()).line
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line
        found.push({ name: owner && ts.isMethodDeclaration(node) ? `${owner}.${named}` : named, file: relative(root, file), lines: end - start + 1 })
      }
    }
    ts.forEachChild(node, (child) => visit(child, name))
  }
  visit(sf, '')
  return found
}

const files = sources(src).filter((f) => !f.includes('/demo/'))
const perFolder = new Map<string, { files: number, lines: number }>()
let total = 0
for (const file of files) {
  const folder = relative(root, join(file, '..'))
  const lines = readFileSync(file, 'utf8').split('\n').length - 1
  total += lines
  const entry = perFolder.get(folder) ?? { files: 0, lines: 0 }
  entry.files++
  entry.lines += lines
  perFolder.set(folder, entry)
}
console.log(`src/ without the demo: ${files.length} files, ${total} lines`)
console.log('\nfolder                 files  lines')
for (const [folder, { files: n, lines }] of [...perFolder].sort()) console.log(`${folder.padEnd(22)} ${String(n).padStart(5)} ${String(lines).padStart(6)}`)
console.log(`\nthe ${values.top} longest functions (lines)`)
const longest = files.filter((f) => f.endsWith('.ts')).flatMap(functions).sort((a, b) => b.lines - a.lines).slice(0, Number(values.top))
for (const fn of longest) console.log(`${String(fn.lines).padStart(5)}  ${fn.name}  ${fn.file}`)
