#!/usr/bin/python3
"""A real BitTorrent leecher for the host tests: Debian's libtorrent (python3-libtorrent).

Usage: lt_leecher.py JSON
  {"torrent": PATH} or {"magnet": URI}, "save": DIR, "peers": ["127.0.0.2:47921"],
  "bind": "127.0.0.9" (source address), "timeout": seconds
Prints one JSON line at the end: {"ok": bool, "progress": .., "state": .., "bytes": .., "error": ..}.
DHT, LSD, UPnP, NAT-PMP and uTP are off: only the peers named are contacted.
"""
import json
import sys
import time

import libtorrent as lt
from lt_session import quiet_session

args = json.loads(sys.argv[1])
bind = args.get("bind", "127.0.0.1")
ses = quiet_session(
    bind,
    announce_to_all_trackers=False,
    alert_mask=lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
)
if "torrent" in args:
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args["torrent"])
else:
    params = lt.parse_magnet_uri(args["magnet"])
params.save_path = args["save"]
params.trackers = []
h = ses.add_torrent(params)
for p in args.get("peers", []):
    host, port = p.rsplit(":", 1)
    h.connect_peer((host, int(port)))

deadline = time.time() + args.get("timeout", 60)
last_connect = time.time()
error = None
while time.time() < deadline:
    s = h.status()
    if s.is_seeding:
        break
    for a in ses.pop_alerts():
        if a.category() & lt.alert.category_t.error_notification:
            error = a.message()
    if time.time() - last_connect > 3 and s.num_peers == 0:
        for p in args.get("peers", []):
            host, port = p.rsplit(":", 1)
            h.connect_peer((host, int(port)))
        last_connect = time.time()
    time.sleep(0.1)
s = h.status()
print(json.dumps({
    "ok": bool(s.is_seeding),
    "progress": s.progress,
    "state": str(s.state),
    "bytes": s.total_payload_download,
    "hasMetadata": bool(s.has_metadata),
    "peers": s.num_peers,
    "error": error,
}))
sys.stdout.flush()
