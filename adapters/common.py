"""Small checks every adapter applies to what it is sent."""

from __future__ import annotations


def encodable(text: str) -> bool:
    """JSON may carry lone surrogates ("\\ud800") that cannot be stored as UTF-8: refuse them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
