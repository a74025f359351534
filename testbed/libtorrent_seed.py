#!/usr/bin/python3
"""Seed a .torrent from disk with libtorrent (Debian's python3-libtorrent), for tests.

usage: libtorrent_seed.py TORRENT SAVE_PATH LISTEN_ADDR PORT [UPLOAD_LIMIT_BYTES_PER_S]
Prints "checked <progress> <num_pieces>" once libtorrent has hash-checked the data, then
"seeding" when it accepts peers; runs until stdin closes. DHT, LSD, UPnP, NAT-PMP and uTP
are off. With --no-check (after the port) libtorrent trusts the data without checking it
(seed_mode), so a test can make it serve files corrupted on disk.
"""
import sys
import time

import libtorrent as lt

args = [a for a in sys.argv[1:] if not a.startswith('--')]
torrent, save_path, addr, port = args[0], args[1], args[2], int(args[3])
limit = int(args[4]) if len(args) > 4 else 0
no_check = '--no-check' in sys.argv
ses = lt.session({
    'listen_interfaces': f'{addr}:{port}',
    'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'allow_multiple_connections_per_ip': True,
    'enable_incoming_utp': False, 'enable_outgoing_utp': False,
    'upload_rate_limit': limit,
    'alert_mask': lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
})
# libtorrent exempts local peers (loopback included) from rate limits by default: the
# upload limit would never apply in a test. Put every address in the global peer class.
every = lt.ip_filter()
every.add_rule('0.0.0.0', '255.255.255.255', 1 << lt.session.global_peer_class_id)
every.add_rule('::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 1 << lt.session.global_peer_class_id)
ses.set_peer_class_filter(every)
params = {'ti': lt.torrent_info(torrent), 'save_path': save_path}
if no_check:
    params['flags'] = lt.torrent_flags.seed_mode
h = ses.add_torrent(params)
checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
deadline = time.time() + 120
while time.time() < deadline and h.status().state in checking:
    time.sleep(0.05)
time.sleep(0.1)
s = h.status()
print(f'checked {s.progress:.6f} {h.torrent_file().num_pieces()}', flush=True)
if s.progress >= 1.0:
    print('seeding', flush=True)
sys.stdin.read()
