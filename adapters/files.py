"""Images over HTTP: `GET /files/<id>` serves one (inert), `POST /widget/upload` takes a buyer's (visitor
id and token in headers) and `POST /desk/api/upload` an agent's (session cookie).

The body is the image's raw bytes. Answers: 200 {"file": id, "type": ..., "url": ...}; 400 empty; 403
not authenticated (or an origin not allowed); 413 over `channels.web.max_image_bytes`; 415 not a PNG,
JPEG, GIF or WebP by its bytes. The image is then sent as the `image` of a widget message or desk reply.
"""

from __future__ import annotations

from aiohttp import web

from bot.files import FileRejected, FileStore

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    "Cache-Control": "private, max-age=86400",
    "Cross-Origin-Resource-Policy": "cross-origin",  # shown by the widget on the shop's own site
}
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class Files:
    def __init__(self, files: FileStore):
        self.files = files

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/files/{id}", self.serve)

    async def serve(self, request: web.Request) -> web.Response:
        found = await self.files.get(request.match_info["id"])
        if found is None:
            return web.json_response({"error": "not_found", "message": "no such file"}, status=404)
        return web.Response(body=found.data, headers={
            **SAFE_HEADERS, "Content-Type": found.content_type,
            "Content-Disposition": f'inline; filename="image.{_EXT[found.content_type]}"',
        })

    async def receive(self, request: web.Request, owner: str | None, extra: dict[str, str] | None = None) -> web.Response:
        """Check and store one uploaded image for `owner` (None: 403)."""
        headers = extra or {}
        if owner is None:
            return web.json_response({"error": "forbidden", "message": "not allowed to upload here"}, status=403, headers=headers)
        if (request.content_length or 0) > self.files.max_bytes:
            return _rejected(FileRejected(413, "too_large", f"an image may have at most {self.files.max_bytes} bytes"), headers)
        data = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > self.files.max_bytes:
                return _rejected(FileRejected(413, "too_large", f"an image may have at most {self.files.max_bytes} bytes"), headers)
        try:
            stored = await self.files.put(bytes(data), owner)
        except FileRejected as exc:
            return _rejected(exc, headers)
        return web.json_response({"file": stored.id, "type": stored.content_type, "url": f"/files/{stored.id}"}, headers=headers)


def _rejected(exc: FileRejected, headers: dict[str, str]) -> web.Response:
    return web.json_response({"error": exc.code, "message": exc.message}, status=exc.status, headers=headers)
