"""The field terms of the query language and what their values may be.

Why this module exists: the parser checks every value when it reads it, so a
bad date or size is reported at its position in the query rather than failing
later in SQL; the compiler then reads the canonical value back with
:func:`size_bytes` and :func:`day`.

Kinds of field:

* text (``subject:``, ``body:``): searched in the full-text index, like free
  words; a trailing ``*`` makes the last word a prefix.
* contains (``from:``, ``to:``, ``cc:``, ``filename:``): a case-insensitive
  substring of an address, display name or file name; ``*`` at either end is
  dropped (a contains match needs no wildcard).
* exact (``folder:``, ``account:``, ``label:`` (a Gmail label, whole name, ASCII
  case folded), ``thread:``, ``message-id:``, ``sha256:``)
  and the checked ones (``flag:``, ``is:``, ``has:``, sizes and dates).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

__all__ = [
    "CONTAINS_FIELDS",
    "FIELDS",
    "HAS_VALUES",
    "IS_VALUES",
    "SYSTEM_FLAGS",
    "TEXT_FIELDS",
    "ValueProblem",
    "canonical_value",
    "day",
    "size_bytes",
]

TEXT_FIELDS = frozenset({"subject", "body"})
CONTAINS_FIELDS = frozenset({"from", "to", "cc", "filename"})
#: Every field, in the order the error message lists them.
FIELDS: tuple[str, ...] = (
    "from",
    "to",
    "cc",
    "subject",
    "body",
    "filename",
    "folder",
    "account",
    "flag",
    "label",
    "is",
    "has",
    "larger",
    "smaller",
    "before",
    "after",
    "on",
    "thread",
    "message-id",
    "sha256",
)
IS_VALUES = ("unread", "suspicious", "signed", "encrypted", "live", "gone")
HAS_VALUES = ("attachment",)
#: flag: names for the system flags (:rfc:`3501#section-2.3.2`), as the server spells them.
SYSTEM_FLAGS = {
    "seen": "\\Seen",
    "flagged": "\\Flagged",
    "answered": "\\Answered",
    "draft": "\\Draft",
    "deleted": "\\Deleted",
}

_SIZE = re.compile(r"^(\d{1,15})([kmg]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ValueProblem(ValueError):
    """A field's value is not one it accepts; the message says what would be."""


def canonical_value(name: str, value: str, *, quoted: bool) -> str:
    """The value of field ``name`` in canonical form.

    :raises ValueProblem: when the value is not allowed for the field.
    """
    if name in CONTAINS_FIELDS and not quoted:
        value = value.strip("*")
    if name == "message-id":
        value = "".join(value.split()).strip("<>")
    if not value.strip():
        raise ValueProblem(f"{name}: needs a value")
    if name == "is":
        return _choice(name, value, IS_VALUES)
    if name == "has":
        return _choice(name, value, HAS_VALUES)
    if name == "flag":
        if any(ch.isspace() for ch in value):
            raise ValueProblem("flag: takes one flag name, without spaces")
        folded = value.lower()
        return folded[1:] if folded[1:] in SYSTEM_FLAGS and folded[0] == "\\" else folded
    if name in ("larger", "smaller"):
        size_bytes(value)
        return value.lower()
    if name in ("before", "after", "on"):
        day(value, name)
        return value
    if name == "sha256":
        if not _HEX64.match(value.lower()):
            raise ValueProblem("sha256: takes the 64 hexadecimal digits of a message's SHA-256")
        return value.lower()
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    folded = value.lower()
    if folded not in allowed:
        choices = ", ".join(f"{name}:{v}" for v in allowed)
        raise ValueProblem(f"unknown value {name}:{value} (known: {choices})")
    return folded


def size_bytes(value: str) -> int:
    """``10k`` → 10240: a size in bytes, ``k``/``m``/``g`` being powers of 1024.

    :raises ValueProblem: for anything but digits with an optional unit (and ``b``).
    """
    found = _SIZE.match(value)
    if not found:
        raise ValueProblem(f"{value!r} is not a size: write bytes (2048) or 10k, 5M, 1G")
    return int(found.group(1)) * _UNITS[found.group(2).lower()]


def day(value: str, name: str = "on") -> datetime:
    """``2024-03-01`` → that day's 00:00 UTC.

    :raises ValueProblem: for anything but a real YYYY-MM-DD date.
    """
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ValueProblem(f"{name}: takes a date as YYYY-MM-DD (UTC), not {value!r}") from None
    return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
