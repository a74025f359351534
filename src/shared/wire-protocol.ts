/**
 * The BEP 10 extensions host and client both speak, named once: the host serves them
 * (src/host/wire-extensions.ts), the client receives them (src/swarm/extensions.ts).
 */

/** BEP 9: the info dict travels in blocks of this size. */
export const METADATA_BLOCK = 16 * 1024
export const UT_METADATA = 'ut_metadata'
/** The welcome message (DSYNC's motd), bencoded `{motd: text}`. */
export const MOTD_EXTENSION = 'dsync_motd'
/**
 * Extended-handshake key: the longest block request a dsync host answers (bytes). A client
 * asks such a host for blocks longer than BitTorrent's usual 16 KiB (fewer requests and
 * messages on both sides); a peer that does not say so is only ever asked for 16 KiB.
 */
export const MAX_BLOCK_KEY = 'dsync_max_block'
/**
 * Extended-handshake key: the host's idle timeout (ms): it closes a peer connection that sends
 * it nothing for this long. A client sends keep-alives well inside it, so a connection that
 * waits (a deep pipeline on a slow link, a shard's swarm opened ahead) is not taken for dead.
 */
export const IDLE_TIMEOUT_KEY = 'dsync_idle_timeout'
