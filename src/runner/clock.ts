/**
 * The runner's idea of "now". DSYNC_NOW (an ISO date, e.g. 2025-05-14T06:03:00) replaces the
 * clock so that schedules, log names and log ages can be checked deterministically; mirror
 * operators can use it to try a timeset= without waiting for the hour.
 */
export function runnerNow(env: NodeJS.ProcessEnv = process.env): Date {
  const forced = env.DSYNC_NOW
  if (forced) {
    const d = new Date(forced)
    if (!Number.isNaN(d.getTime())) return d
  }
  return new Date()
}

/** `20250514-0603` in local time, DSYNC's log file stamp. */
export function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`
}

/** `2025-05-14 06:03:00`, local time, for log lines. */
export function logTime(d: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}
