"""Small checks every adapter applies to what it is sent."""

from __future__ import annotations

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
