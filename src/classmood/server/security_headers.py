"""The security headers of every response, in one place (pure ASGI middleware).

The Content-Security-Policy allows nothing remote: scripts, styles, images, workers and connections
come from this server only. What the pages need beyond ``'self'`` is listed with its reason:

- ``script-src 'wasm-unsafe-eval'``: the in-browser model compiles WebAssembly (onnxruntime-web);
  plain ``eval`` stays forbidden;
- ``worker-src blob:``: onnxruntime-web starts its workers from blob URLs;
- ``img-src data: blob:``: plotly renders PNG downloads through data URLs, Swagger UI its icons;
- ``style-src 'sha256-47DEQpj8…'``: the hash of the empty string, so *empty* ``<style>`` elements only. plotly.js
  (4.x in plotly 7) creates an empty ``<style id="plotly.js-style-global">`` and fills it through the CSSOM
  (``sheet.insertRule``), which the CSP does not govern; without the hash Chromium refuses the element and the
  modebar, hover and drag styles are lost. An empty style element styles nothing, so this opens nothing. The
  one ``<style>`` plotly.js fills with text (maplibre's CSS, for map traces we never draw) is skipped because
  the chart pages put an empty element of its id first (``web.assets.plotly_style_ids``). The templates use
  classes, never ``style=""``, and scripts set styles through the CSSOM (``el.style``), never the attribute.
  So there is no ``'unsafe-inline'``: an injected ``<style>`` or ``style=""`` is refused (the browser tests
  fail on any violation). Nonces were not needed (and would make every page response differ).

To allow more, add sources to :data:`CSP` here, with the reason, and nowhere else.

>>> "frame-ancestors 'none'" in content_security_policy()
True
>>> "unsafe-inline" in content_security_policy()
False
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"  # sha256 of b"": empty <style> only

CSP: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'", "'wasm-unsafe-eval'"),
    "worker-src": ("'self'", "blob:"),
    "connect-src": ("'self'",),
    "img-src": ("'self'", "data:", "blob:"),
    "media-src": ("'self'", "blob:"),
    "style-src": ("'self'", EMPTY_STYLE),
    "font-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}

# The student page only: cross-origin isolation lets onnxruntime-web run multi-threaded WebAssembly
# (SharedArrayBuffer). Every response already carries CORP same-origin, so same-origin files still load.
CROSS_ORIGIN_ISOLATED = {"cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp"}

# The camera is the student page's; nothing here needs the microphone, location or payment.
PERMISSIONS = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"


def content_security_policy(directives: dict[str, tuple[str, ...]] | None = None) -> str:
    """The CSP header value built from :data:`CSP` (or ``directives``)."""
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in (directives or CSP).items())


def security_headers() -> list[tuple[bytes, bytes]]:
    """Every header the middleware adds, as ASGI header pairs."""
    headers = {
        "content-security-policy": content_security_policy(),
        "x-frame-options": "DENY",  # for browsers that predate frame-ancestors
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "permissions-policy": PERMISSIONS,
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
    }
    return [(name.encode(), value.encode()) for name, value in headers.items()]


class SecurityHeaders:
    """ASGI middleware adding :func:`security_headers` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = security_headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                if https and b"strict-transport-security" not in present:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
