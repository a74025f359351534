// bittorrent-dht 11 ships no types. src/shared/dht.ts describes the slice it uses (RawDht)
// and casts the constructor to it; this declaration only lets the import be written literally.
declare module 'bittorrent-dht' {
  const DHT: new (opts: object) => unknown
  export default DHT
}
