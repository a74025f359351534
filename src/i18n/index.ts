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

/**
 * The locale a browser asks for (Accept-Language): the first of en / ko it names with a
 * non-zero weight, in its order of preference; English when it names neither.
 */
export function localeOfAcceptLanguage(header: string | undefined): Locale {
  const ranked = (header ?? '').split(',').map((part, i) => {
    const [tag, ...params] = part.trim().toLowerCase().split(';')
    const q = params.map(p => /^\s*q=([\d.]+)\s*$/.exec(p)).find(Boolean)
    return { tag, q: q ? Number(q[1]) : 1, i }
  }).filter(l => l.q > 0).sort((a, b) => b.q - a.q || a.i - b.i)
  for (const l of ranked) {
    if (/^ko(-|$)/.test(l.tag)) return 'ko'
    if (/^en(-|$)/.test(l.tag)) return 'en'
  }
  return 'en'
}

export function setLocale(locale: Locale): void {
  current = locale
}

export function getLocale(): Locale {
  return current
}

/** The message `id` in the current locale, with `{name}` placeholders filled from `params`. */
export function t(id: MessageId, params: MessageParams = {}): string {
  return tIn(current, id, params)
}

/** The message `id` in a given locale: for text shown to someone else (a web page's reader). */
export function tIn(locale: Locale, id: MessageId, params: MessageParams = {}): string {
  const entry = messages[id]
  const template = entry[locale] ?? entry.en
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole)
}
