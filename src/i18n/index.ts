import { messages, type MessageId } from './messages.js'

export type { MessageId }
export type MessageParams = Record<string, string | number>
export type Locale = 'en' | 'ko'

/** Korean when the locale says so (LC_ALL > LC_MESSAGES > LANG, as gettext reads them). */
export function detectLocale(env: NodeJS.ProcessEnv = process.env): Locale {
  const forced = env.DSYNC_LANG
  if (forced === 'ko' || forced === 'en') return forced
  const value = env.LC_ALL || env.LC_MESSAGES || env.LANG || ''
  return /^ko([_.@-]|$)/i.test(value) ? 'ko' : 'en'
}

let current: Locale = detectLocale()

export function setLocale(locale: Locale): void {
  current = locale
}

export function getLocale(): Locale {
  return current
}

/** The message `id` in the current locale, with `{name}` placeholders filled from `params`. */
export function t(id: MessageId, params: MessageParams = {}): string {
  const entry = messages[id]
  const template = entry[current] ?? entry.en
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole)
}
