#!/usr/bin/python3
"""Bootstrap a sharded dsync repository with libtorrent alone (Debian's python3-libtorrent).

Usage: lt_sharded.py JSON
  {"magnet": URI of the repository (its index torrent), "save": DIR,
   "peers": ["127.0.0.2:47921", ...], "bind": "127.0.0.9", "timeout": seconds}

What a libtorrent user does (docs/SCALE.md): add the repository's magnet link; the index
torrent it names holds .dsync/data.dsync and .dsync/shards/<infohash>.torrent; once it is
complete, add every shard .torrent with the same save path. All of them unpack into
DIR/<repo>/. Every torrent is loaded with libtorrent's default limits.
Prints one JSON line: {"ok": bool, "shards": n, "files": n, "bytes": n, "error": ..}.
DHT, LSD, UPnP, NAT-PMP and uTP are off: only the peers named are contacted.
"""
import glob
import json
import os
import sys
import time

import libtorrent as lt
from lt_session import quiet_session

args = json.loads(sys.argv[1])
bind = args.get("bind", "127.0.0.1")
ses = quiet_session(
    bind,
    alert_mask=lt.alert.category_t.error_notification,
    # Many torrents at once: none may be queued behind the others.
    active_downloads=-1,
    active_seeds=-1,
    active_limit=-1,
)
deadline = time.time() + args.get("timeout", 600)
peers = [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in args.get("peers", [])]
error = None


def connect(h):
    for p in peers:
        h.connect_peer(p)


def wait_all(handles):
    global error
    last = time.time()
    while time.time() < deadline:
        for a in ses.pop_alerts():
            if a.category() & lt.alert.category_t.error_notification:
                error = a.message()
        if all(h.status().is_seeding for h in handles):
            return True
        if time.time() - last > 3:
            for h in handles:
                if not h.status().is_seeding and h.status().num_peers == 0:
                    connect(h)
            last = time.time()
        time.sleep(0.2)
    return False


params = lt.parse_magnet_uri(args["magnet"])
params.save_path = args["save"]
index = ses.add_torrent(params)
connect(index)
ok = wait_all([index])
shards = []
if ok:
    name = index.torrent_file().name()
    for path in sorted(glob.glob(os.path.join(args["save"], name, ".dsync", "shards", "*.torrent"))):
        p = lt.add_torrent_params()
        p.ti = lt.torrent_info(path)  # default limits: 10 MB, 3M tokens
        p.save_path = args["save"]
        h = ses.add_torrent(p)
        connect(h)
        shards.append(h)
    ok = len(shards) > 0 and wait_all(shards)
files = sum(h.torrent_file().num_files() for h in shards) if ok else 0
print(json.dumps({
    "ok": ok,
    "shards": len(shards),
    "files": files,
    "bytes": sum(h.status().total_payload_download for h in [index] + shards),
    "error": error,
}))
sys.stdout.flush()
