#!/usr/bin/env bash
# The published package, installed as a user installs a CLI: `npm pack`, then
# `npm install -g ./dsync-*.tgz` into a temporary prefix, from a folder outside the project
# (so the project's .npmrc and overrides do not apply), with npm's defaults (install scripts
# on, as for any user): it must need nothing but the tarball and run no install script. Then `dsync --help` and `dsync demo` (twice: the second with the pulls on worker threads) from that prefix, and
# `npx` running the same tarball.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/dsync-pack-check.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$repo"
tgz="$(npm pack --silent --pack-destination "$work" | tail -1)"
echo "packed $tgz: $(tar -tzf "$work/$tgz" | wc -l) files"
if tar -tzf "$work/$tgz" | grep -E '^package/dist/(test|bench|testbed|src|cli|tracker)/'; then
  echo "pack-check: compiled sources, tests or benchmarks in the tarball"; exit 1
fi
if tar -xzOf "$work/$tgz" package/package.json | node -e 'const s = JSON.parse(require("fs").readFileSync(0, "utf8")).scripts ?? {}; process.exit(["preinstall", "install", "postinstall"].some(k => k in s) ? 1 : 0)'; then :; else
  echo "pack-check: the package has an install script"; exit 1
fi
cd "$work"
export npm_config_prefix="$work/prefix" npm_config_userconfig="$work/npmrc" npm_config_update_notifier=false
: > "$work/npmrc"
npm install -g --no-audit --no-fund --loglevel=error "./$tgz"
test ! -e "$work/prefix/lib/node_modules/dsync/node_modules" || { echo "pack-check: the installed package pulled dependencies"; exit 1; }
"$work/prefix/bin/dsync" --help >/dev/null
"$work/prefix/bin/dsync" demo > "$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
grep -q '^sync: ' "$work/demo.log"
# Again with the pulls on their worker threads (stage, verify, folders: the demo's pulls are
# small enough to stage on the event loop otherwise). Each worker is a file of the bundle of
# its own; one missing from it stalled every pull of the installed CLI.
DSYNC_STAGE_THREADS=1 "$work/prefix/bin/dsync" demo > "$work/demo-threads.log" 2>&1 || { cat "$work/demo-threads.log"; exit 1; }
grep -q '^sync: ' "$work/demo-threads.log"
npx --yes --package "./$tgz" -- dsync --help >/dev/null
# The bin is a sh script (cli/dsync.sh) linked from prefix/bin: it finds main.js through the link,
# and gendsync (DSYNC's spelling) runs and writes a generation.
mkdir -p "$work/web/r" && echo hello > "$work/web/r/a"
"$work/prefix/bin/dsync" --home "$work/home" init --webroot "$work/web" >/dev/null
printf 'repo=r\nsave=%s\ndsync=true\n' "$work/web/r" > "$work/home/repos/r.conf"
"$work/prefix/bin/dsync" --home "$work/home" -gendsync >/dev/null || { echo "pack-check: the installed dsync -gendsync failed"; exit 1; }
test -s "$work/web/r/.dsync/data.dsync" || { echo "pack-check: dsync -gendsync wrote no data.dsync"; exit 1; }
# The bundle's folder copied out of the package still runs, without Node's syntax detection:
# its files are CommonJS and its own package.json says so (the package's says "module", and
# read as ES modules the bundle's require()s fail).
cp -r "$work/prefix/lib/node_modules/dsync/dist/bundle" "$work/bundle-copy"
nodetect=(); node --no-experimental-detect-module -e 0 2>/dev/null && nodetect=(--no-experimental-detect-module)
node "${nodetect[@]}" "$work/bundle-copy/dsync.js" --help >/dev/null || { echo "pack-check: the bundle's folder does not declare its module type"; exit 1; }
echo "pack-check: OK (npm install -g, dsync --help, dsync demo, dsync demo on worker threads, npx dsync --help, dsync -gendsync, the bundle's folder copied out)"
