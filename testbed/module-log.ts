import { register } from 'node:module'

/**
 * `node --import .../module-log.js` with DSYNC_TEST_MODULE_LOG=FILE: every module the process
 * loads is appended to FILE, one URL a line (the hooks in module-log-hooks.ts). Start-up tests
 * use it to check what a command loads.
 */
register(new URL('./module-log-hooks.js', import.meta.url))
