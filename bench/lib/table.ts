/** A markdown table: header row, separator, one line per row. */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** Seconds with enough digits for both 0.04 s and 40 s. */
export function fmtSeconds(s: number): string {
  return s < 1 ? s.toFixed(3) : s < 10 ? s.toFixed(2) : s.toFixed(1)
}

export function fmtMiB(bytes: number): string {
  return (bytes / (1 << 20)).toFixed(0)
}
