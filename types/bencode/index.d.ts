// bencode 4 ships no types; this covers what dsync uses.
declare module 'bencode' {
  type Value = number | string | Uint8Array | Value[] | { [key: string]: Value } | Map<string, Value>
  function encode(data: unknown): Uint8Array
  function decode(data: Uint8Array, start?: number, end?: number, encoding?: string): any
  const bencode: { encode: typeof encode; decode: typeof decode; byteLength(data: unknown): number }
  export default bencode
  export { encode, decode, Value }
}
