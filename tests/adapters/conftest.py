"""Fixtures shared by the adapter tests: an HTTP client session and desk clients closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from tests.desk_client import DeskClient


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def desks() -> AsyncIterator[Callable[[str], DeskClient]]:
    opened: list[DeskClient] = []

    def make(base_url: str) -> DeskClient:
        opened.append(DeskClient(base_url))
        return opened[-1]

    yield make
    for desk in opened:
        await desk.close()
