// Lists functions longer than a limit (default 60 lines) in the product folders, using the
// TypeScript parser: `node scripts/long-functions.mjs [LIMIT] [FOLDER...]`.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'

const [limitArg, ...dirs] = process.argv.slice(2)
const limit = Number(limitArg ?? 60)
const roots = dirs.length ? dirs : ['src', 'cli', 'tracker']
const files = roots.flatMap(function walk(d) {
  return statSync(d).isDirectory() ? readdirSync(d).flatMap(n => walk(join(d, n))) : d.endsWith('.ts') ? [d] : []
})
const rows = []
for (const file of files) {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const visit = node => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line
      const end = sf.getLineAndCharacterOfPosition(node.end).line
      const lines = end - start + 1
      const name = node.name?.getText(sf) ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText(sf) : '(anonymous)')
      if (lines > limit) rows.push(`${String(lines).padStart(4)}  ${file}:${start + 1}  ${name}`)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
}
console.log(rows.sort().reverse().join('\n') || `no function longer than ${limit} lines`)
