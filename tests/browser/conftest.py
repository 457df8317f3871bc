"""Real headless Chromium (Debian's package) driven by Playwright's Python API.

Locally without Chromium these tests are marked skipped with a message saying how to install it;
with XIAOER_REQUIRE_BROWSER=1 (set by .ci/run) a missing browser is a failure, so CI never skips them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-quic", "--disable-sync",
]
MISSING = "Chromium not found: install it with `apt-get install -y chromium` (or set CHROMIUM=/path/to/chromium)"
REQUIRED = bool(os.environ.get("XIAOER_REQUIRE_BROWSER"))


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    missing = chromium_path() is None and not REQUIRED
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.skipif(missing, reason=MISSING))


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    path = chromium_path()
    if path is None:
        pytest.fail(MISSING)  # only reached when the browser is required (CI)
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
