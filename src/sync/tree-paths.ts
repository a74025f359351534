/** The folder holding a manifest path ('' at the top). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/')
  return slash < 0 ? '' : path.slice(0, slash)
}

/** How many folders down a manifest path is. */
export function depth(path: string): number {
  let d = 0
  for (const ch of path) if (ch === '/') d++
  return d
}
