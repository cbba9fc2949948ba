"""The client's address for per-address limits: the peer, or X-Forwarded-For only behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(spec: str) -> tuple[Network, ...]:
    """'10.0.0.0/8, 127.0.0.1' → networks; a bad entry stops the start-up rather than trusting too much."""
    nets = []
    for item in (part.strip() for part in spec.split(",")):
        if item:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise RuntimeError(f"TRUSTED_PROXIES: {item!r} is not an address or network") from None
    return tuple(nets)


def _trusted(address: str, trusted: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """Walk X-Forwarded-For from the right while the hop is a trusted proxy; the first other hop is the client.

    Entries left of an untrusted hop were written by the client itself and are ignored (spoofable)."""
    if not peer or not trusted or not _trusted(peer, trusted) or not forwarded_for:
        return _normal(peer)
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return _normal(hop)
    return _normal(hops[0]) if hops else _normal(peer)


def _normal(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None  # not an address: no per-address limit rather than a key an attacker chose
