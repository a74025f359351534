/**
 * One user-facing sentence in both languages. Its own file so that the area catalogues
 * (./areas/*.ts) and the catalogue that merges them (messages.ts) both depend on it,
 * not on each other.
 */
export type Entry = { en: string; ko: string }
