/**
 * Paths in data.dsync are escaped so that one entry is one line of tab-separated fields
 * whatever the file is called: backslash, tab, newline, carriage return and the other C0
 * controls and DEL become C-style escapes. Everything else, UTF-8 included, stays as is.
 */
export function escapePath(path: string): string {
  // Nearly every path needs nothing: a scan of its units is cheaper than the replace's regex.
  let plain = true
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c < 0x20 || c === 0x5c || c === 0x7f) {
      plain = false
      break
    }
  }
  if (plain) return path
  return path.replace(/[\\\x00-\x1f\x7f]/g, ch => {
    switch (ch) {
      case '\\': return '\\\\'
      case '\t': return '\\t'
      case '\n': return '\\n'
      case '\r': return '\\r'
      default: return '\\x' + ch.charCodeAt(0).toString(16).padStart(2, '0')
    }
  })
}

/** Inverse of escapePath; returns undefined for a malformed escape. */
export function unescapePath(text: string): string | undefined {
  if (!text.includes('\\')) return text
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch !== '\\') {
      out += ch
      continue
    }
    const next = text[++i]
    if (next === '\\') out += '\\'
    else if (next === 't') out += '\t'
    else if (next === 'n') out += '\n'
    else if (next === 'r') out += '\r'
    else if (next === 'x' && /^[0-9a-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(text.slice(i + 1, i + 3), 16))
      i += 2
    } else return undefined
  }
  return out
}
