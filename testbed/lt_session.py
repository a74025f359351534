"""A libtorrent session for tests and benchmarks: loopback only, on one source address.

DHT, LSD, UPnP, NAT-PMP and uTP are off, so only the peers a script names are contacted.
"""
import libtorrent as lt


def quiet_session(bind, **extra):
    settings = {
        "listen_interfaces": f"{bind}:0",
        "outgoing_interfaces": bind,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
    }
    settings.update(extra)
    return lt.session(settings)
