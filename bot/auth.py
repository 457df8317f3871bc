"""Agent passwords (argon2id) and login tokens.

Argon2 is slow on purpose (tens of milliseconds of CPU per check): logins check passwords in worker
threads, at most HASH_CONCURRENCY at a time, so a burst of logins never stalls the event loop that
serves buyers and desks.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
# A real hash to verify against when the username is unknown, so timing does not reveal which
# usernames exist.
_DUMMY = _HASHER.hash(secrets.token_hex(16))
HASH_CONCURRENCY = 2
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def check_password(password_hash: str | None, password: str) -> bool:
    """verify_password off the event loop, at most HASH_CONCURRENCY at a time per loop."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(HASH_CONCURRENCY)
    async with slots:
        return await asyncio.to_thread(verify_password, password_hash, password)


def new_token() -> str:
    return secrets.token_urlsafe(32)
