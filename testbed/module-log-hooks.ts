import { appendFileSync } from 'node:fs'

// Module customization hooks (node:module register): they run on Node's loader thread.
type Next = (url: string, context: unknown) => Promise<unknown>

export async function load(url: string, context: unknown, next: Next): Promise<unknown> {
  const file = process.env.DSYNC_TEST_MODULE_LOG
  if (file) appendFileSync(file, `${url}\n`)
  return next(url, context)
}
