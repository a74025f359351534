/**
 * Text from the network (a host's motd, a host's error text, file names from a torrent or
 * data.dsync) must not reach the terminal as control sequences: a motd holding clear-screen,
 * window-title or OSC 52 (clipboard write) sequences was printed raw. Every control character
 * but newline and tab — C0, DEL, C1 (0x9b is a one-byte CSI) — and the bidirectional overrides
 * that reorder what is shown ("Trojan Source") are written as visible escapes instead.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, c => {
    const code = c.charCodeAt(0)
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
}

/**
 * JSON.stringify escapes C0 controls but leaves DEL, C1 and the bidirectional overrides raw;
 * this escapes those too (as \uXXXX, so the JSON still decodes to the same strings).
 */
// eslint-disable-next-line no-control-regex
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

export function jsonSafe(json: string): string {
  return json.replace(JSON_UNSAFE, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
