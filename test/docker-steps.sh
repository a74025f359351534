#!/usr/bin/env bash
# Runs the Dockerfile's steps without a Docker engine (none runs on our machines): the build
# stage and the runtime stage each in a clean folder holding only what the Dockerfile COPYs,
# then a smoke run of the runtime folder as a non-root user, with DXYNC_HOME as in the image:
# --help, init, gendsync, service --foreground + pull over loopback, tracker.
# Usage: test/docker-steps.sh   (needs npm registry access or a warm npm cache; ~1-2 min)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/dsync-docker-steps.XXXXXX)"
pids=()
cleanup() {
  # Background jobs run under setsid: their pid is their process group.
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

# The files each stage COPYs, as the Dockerfile names them.
copy_context() {
  local to="$1"; shift
  mkdir -p "$to"
  for f in "$@"; do cp -a "$repo/$f" "$to/"; done
}

step "build stage: npm ci --ignore-scripts, tsc, bundle"
copy_context "$work/build" package.json package-lock.json stubs
(cd "$work/build" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
copy_context "$work/build" tsconfig.json types src cli tracker scripts
(cd "$work/build" && npx tsc -p tsconfig.json && node scripts/bundle.mjs)
test -f "$work/build/dist/bundle/dsync.js"

step "runtime stage: package.json and dist/bundle/ from the build stage (no node_modules)"
copy_context "$work/app" package.json
mkdir -p "$work/app/dist" && cp -a "$work/build/dist/bundle" "$work/app/dist/bundle"
test ! -e "$work/app/node_modules" || { echo "node_modules in the runtime image"; exit 1; }
echo "runtime size: $(du -sh "$work/app" | cut -f1)"

# As in the image: a non-root user, DXYNC_HOME=/home/dsync/dxync (here under $work).
user="$(id -un)"
run() { "$@"; }
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  user=nobody
  # setpriv execs the command (no lingering parent, unlike runuser), so a kill reaches node.
  run() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
fi
chmod -R a+rX "$work"
mkdir -p "$work/home" "$work/mirrors/demo/pool" "$work/dest"
printf 'hello\n' > "$work/mirrors/demo/pool/a.deb"
head -c 300000 /dev/urandom > "$work/mirrors/demo/pool/b.deb"
chown -R "$user" "$work/home" "$work/mirrors" "$work/dest"
export DXYNC_HOME="$work/home/dxync"
export work
dsync() { run env DXYNC_HOME="$DXYNC_HOME" node "$work/app/dist/bundle/dsync.js" "$@"; }

step "smoke run as $user: --help, init, gendsync"
dsync --help >/dev/null
dsync init --webroot "$work/mirrors"
printf 'repo=demo\nsave=%s\ndsync=true\n' "$work/mirrors/demo" > "$DXYNC_HOME/repos/demo.conf"
mkdir -p "$DXYNC_HOME/dtp" && printf '/demo\n' > "$DXYNC_HOME/dtp/list.conf"
printf 'listen=127.0.6.1\nport=47921\n' >> "$DXYNC_HOME/xync.conf"
chown -R "$user" "$DXYNC_HOME"
dsync gendsync

step "service --foreground (the container's main process) and a pull from it"
setsid bash -c "$(declare -f run dsync); dsync service --foreground" > "$work/service.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/service.log" && break; sleep 0.1; done
grep listening "$work/service.log"
dsync pull dtp://127.0.6.1/demo "$work/dest/demo"
cmp "$work/mirrors/demo/pool/b.deb" "$work/dest/demo/pool/b.deb"

step "tracker"
setsid bash -c "$(declare -f run dsync); dsync tracker --listen 127.0.6.1 --port 47922" > "$work/tracker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -qi listening "$work/tracker.log" && break; sleep 0.1; done
cat "$work/tracker.log"
curl -fsS "http://127.0.6.1:47922/stats.json" >/dev/null 2>&1 && echo "tracker answers /stats.json" || node -e "fetch('http://127.0.6.1:47922/stats.json').then(r => { if (!r.ok) process.exit(1); console.log('tracker answers /stats.json') })"
echo; echo "docker steps: OK"
