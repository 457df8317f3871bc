"""Small checks every adapter applies to what it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from aiohttp import web


def encodable(text: str) -> bool:
    """JSON may carry lone surrogates ("\\ud800") that cannot be stored as UTF-8: refuse them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def own_origins(request: web.Request, public_url: str) -> set[str]:
    """The origins this server answers as: the one the request came to, and the configured public URL."""
    origins = {f"{request.scheme}://{request.host}"}
    if public_url:
        parts = urlsplit(public_url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


class OpenSockets:
    """The WebSockets an adapter has open, closed with 1001 (going away) when the server shuts down,
    so clients reconnect to another process at once instead of holding the shutdown up."""

    def __init__(self) -> None:
        self._open: set[web.WebSocketResponse] = set()

    @contextmanager
    def track(self, ws: web.WebSocketResponse) -> Iterator[None]:
        self._open.add(ws)
        try:
            yield
        finally:
            self._open.discard(ws)

    async def close_all(self, app: web.Application) -> None:
        for ws in list(self._open):
            await ws.close(code=1001, message=b"server shutdown")
