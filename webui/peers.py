"""Who is on the other end of a request: the peer address, and behind the reverse proxies of
`webui.trusted_proxies` the client they forward for (X-Forwarded-For).

`create_app` parses the CIDRs once into `app.extensions["opslog.trusted_proxies"]`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from flask import current_app, request


def trusted_networks(cidrs: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in current_app.extensions["opslog.trusted_proxies"])


def from_trusted_proxy() -> bool:
    return is_trusted_proxy(request.remote_addr or "")


def client_address() -> str:
    """Who is signing in, for the throttle: the peer, or behind trusted proxies the nearest
    address in X-Forwarded-For that is not one of them (what a client writes there itself is
    further left, so it cannot pick its own address)."""
    peer = request.remote_addr or "?"
    if not is_trusted_proxy(peer):
        return peer
    hops = [hop.strip() for value in request.headers.getlist("X-Forwarded-For") for hop in value.split(",")]
    for hop in reversed(hops):
        if hop and not is_trusted_proxy(hop):
            return hop[:64]
    return peer
