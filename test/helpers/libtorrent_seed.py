#!/usr/bin/python3
"""Seed a .torrent from disk with libtorrent (Debian's python3-libtorrent), for interop tests.

usage: libtorrent_seed.py TORRENT SAVE_PATH LISTEN_ADDR PORT
Prints "checked <progress> <num_pieces>" once libtorrent has hash-checked the data, then
"seeding" when it accepts peers; runs until stdin closes. DHT, LSD, UPnP and NAT-PMP are off.
"""
import sys
import time

import libtorrent as lt

torrent, save_path, addr, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ses = lt.session({
    'listen_interfaces': f'{addr}:{port}',
    'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'allow_multiple_connections_per_ip': True,
    'enable_incoming_utp': False, 'enable_outgoing_utp': False,
    'alert_mask': lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
})
h = ses.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save_path})
deadline = time.time() + 120
while time.time() < deadline:
    s = h.status()
    if s.state in (lt.torrent_status.seeding, lt.torrent_status.finished, lt.torrent_status.downloading) and not s.state == lt.torrent_status.checking_files:
        if s.state != lt.torrent_status.checking_resume_data:
            break
    time.sleep(0.05)
s = h.status()
print(f'checked {s.progress:.6f} {h.torrent_file().num_pieces()}', flush=True)
if s.progress >= 1.0:
    print('seeding', flush=True)
sys.stdin.read()
