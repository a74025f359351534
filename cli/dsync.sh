#!/bin/sh
# The installed command (package.json's bin; scripts/bundle.mjs copies this file to
# dist/bundle/dsync beside main.js). It execs Node on the program, main.js (gendsync.js for
# gendsync: the same program with that command only), so what a caller sees is Node's own
# process: its output, its exit code, its signals, with no process between.
#
# gendsync (`dsync gendsync`, `dsync -gendsync`, after any global options) gets glibc's malloc
# in transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, read by glibc only at
# exec; src/util/huge-pages.ts) and no NODE_EXTRA_CA_CERTS (Node loads those certificates at
# every start, before any JavaScript, and gendsync opens no connection). This took the place of
# cli/launch.ts's Node process, which ran gendsync in a child of its own for the same two
# things: a hinted gendsync at 200k files paid a whole second Node start for it (docs/SCALE.md,
# "gendsync, session 20"). `node dist/bundle/dsync.js` (cli/launch.ts) still works as before.
#
# The verb is found as cli/main.ts finds it (cli/legacy.ts's rewrite, then cli/verb.ts), and
# test/bundle.test.ts compares the two on a table of command lines; a command added to main.ts
# under a verb of its own needs its DSYNC spelling added below. The tunable is added only where it does
# something: THP in "madvise" mode ("always" does it already, "never" not at all) and no word of
# the operator's on it in GLIBC_TUNABLES (their value wins). glibc's version is not checked, as
# the launcher does: a glibc before 2.35 ignores a tunable it does not know, and so does any other
# C library the variable itself, and here there is no second process to save.
self=$0
if [ -L "$self" ]; then self=$(readlink -f -- "$self") || self=$0; fi
dir=${self%/*}
[ "$dir" = "$self" ] && dir=.

verb=
skip=
for a in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case $a in
    -h | --help | -V | --version) break ;;
    --home) skip=1 ;;
    gendsync | -gendsync) verb=gendsync; break ;;
    # DSYNC's spelling of another command (cli/legacy.ts rewrites the first one found).
    -init | -verify | -magnet | -key | -tracker | -service | -stop-service | -reload | -status | -startup | \
      -pull | -sync | -run | -emoff | -test | -cleanlog | -diff | -demo) break ;;
    -*) ;;
    *) break ;;
  esac
done

if [ "$verb" = gendsync ]; then
  unset NODE_EXTRA_CA_CERTS
  case ":${GLIBC_TUNABLES-}:" in
    *:glibc.malloc.hugetlb:* | *:glibc.malloc.hugetlb=*) ;;
    *)
      thp=
      { read -r thp < /sys/kernel/mm/transparent_hugepage/enabled; } 2>/dev/null
      case $thp in
        *'[madvise]'*) GLIBC_TUNABLES=${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1; export GLIBC_TUNABLES ;;
      esac
      ;;
  esac
  # The program with gendsync's command only (scripts/bundle.mjs): less to compile at each start.
  exec node "$dir/gendsync.js" "$@"
fi
exec node "$dir/main.js" "$@"
