"""Which peer may say who the client is: ``X-Forwarded-For`` is believed only from trusted proxies.

A client's address is what the login throttle counts. uvicorn, left to itself, believes the forwarded headers
of any local peer (``FORWARDED_ALLOW_IPS`` defaults to 127.0.0.1), so anyone on the server's own machine, or
any request relayed by a local process, could name whatever address it liked and walk around the throttle.
ClassMood therefore turns uvicorn's own handling off (:func:`classmood.server.app.uvicorn_options`, the test
server) and applies uvicorn's middleware itself, inside the app, for exactly the proxies named in
``CLASSMOOD_TRUSTED_PROXIES`` (addresses or networks, comma-separated; empty, the default: no one).

>>> trusted_proxies(" 10.0.0.5, 192.168.0.0/24 ,")
['10.0.0.5', '192.168.0.0/24']
"""

from __future__ import annotations

from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


def trusted_proxies(setting: str) -> list[str]:
    """The proxies named in the setting (``*`` would trust every peer: refused by the settings)."""
    return [item.strip() for item in setting.split(",") if item.strip()]


def install_proxy_trust(app: Any, setting: str) -> None:
    """Take ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from the named proxies only (none: nothing added)."""
    proxies = trusted_proxies(setting)
    if proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
