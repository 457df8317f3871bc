"""Images buyers and agents send: checked by their bytes, kept in Redis with a size cap, served inert.

The type is decided by the file's magic bytes (PNG, JPEG, GIF, WebP), never by a name or a declared
Content-Type, so an HTML or SVG file renamed to .png is refused. Files live in Redis (base64, under
the configured prefix) for as long as conversations do, so every process serves every file. The file id
is 128 random bits: the URL is the capability (an <img> cannot send a cookie to another origin), and
the file is served with its checked type, nosniff and a sandboxing CSP, so it can never run script.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

from bot.store import Store

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff(data: bytes) -> str | None:
    """The image type from the first bytes, or None when it is not an image we accept."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class FileRejected(Exception):
    """Not stored: `status` is the HTTP answer (400 empty, 413 too large, 415 not an accepted image)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class StoredFile:
    id: str
    content_type: str
    data: bytes
    owner: str  # the conversation it was sent in


class FileStore:
    def __init__(self, store: Store, max_bytes: int):
        self.store = store
        self.max_bytes = max_bytes

    def check(self, data: bytes) -> str:
        """The accepted type of `data`; raises FileRejected."""
        if not data:
            raise FileRejected(400, "empty", "the body is empty: send the image's bytes")
        if len(data) > self.max_bytes:
            raise FileRejected(413, "too_large", f"an image may have at most {self.max_bytes} bytes")
        kind = sniff(data)
        if kind is None:
            raise FileRejected(415, "unsupported_type", "only PNG, JPEG, GIF and WebP images are accepted")
        return kind

    async def put(self, data: bytes, owner: str) -> StoredFile:
        kind = self.check(data)
        file_id = secrets.token_hex(16)
        await self.store.put_file(file_id, {"type": kind, "owner": owner, "data": base64.b64encode(data).decode()})
        return StoredFile(file_id, kind, data, owner)

    async def get(self, file_id: str) -> StoredFile | None:
        if not FILE_ID.match(file_id):
            return None
        raw = await self.store.get_file(file_id)
        if not raw.get("data") or raw.get("type") not in {kind for _, kind in _MAGIC} | {"image/webp"}:
            return None
        return StoredFile(file_id, raw["type"], base64.b64decode(raw["data"]), raw.get("owner", ""))
