// parse-prometheus-text-format 1.1 ships no types; this covers what the tests use.
declare module 'parse-prometheus-text-format' {
  export interface ParsedSample {
    value: string
    labels?: Record<string, string>
    timestamp_ms?: string
  }
  export interface ParsedFamily {
    name: string
    help: string
    type: 'COUNTER' | 'GAUGE' | 'SUMMARY' | 'HISTOGRAM' | 'UNTYPED'
    metrics: ParsedSample[]
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[]
}
