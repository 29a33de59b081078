"""Where a service listens."""

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is a loopback one (only this machine connects)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
