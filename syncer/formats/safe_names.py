"""File and directory names made from mail: folder names and subjects, made harmless.

Why this module exists: an export turns strings other people chose (a folder
called ``../../etc``, a subject full of NUL bytes, control characters, ``CON``
or 4,000 characters) into paths. Every name passes through :func:`safe_component`,
which returns one path component that cannot climb out of its directory, name
a device, hide itself, or overflow a file system's name limit; :func:`safe_relpath`
joins such components and :func:`inside` checks the final path against the
export root (belt and braces).

The mapping keeps readable names readable: letters in any script, digits,
spaces and most punctuation pass unchanged, so ``Überweisungen`` stays
``Überweisungen``. It is deterministic and not meant to be reversed (the
original names travel in the sidecar files, where there are any).

Public API: :func:`safe_component`, :func:`safe_relpath`, :func:`inside`,
:data:`MAX_COMPONENT_BYTES`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

__all__ = ["MAX_COMPONENT_BYTES", "RESERVED", "inside", "safe_component", "safe_relpath"]

#: Most file systems allow 255 bytes per name; leave room for a suffix such as ``.mbox``.
MAX_COMPONENT_BYTES = 200

# Path separators of any system, NUL and every other control character (C0, DEL, C1),
# and characters Windows refuses in names.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
# Unicode line and paragraph separators, bidi controls and other invisible format
# characters: harmless to the file system but they make names lie about themselves.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})

#: Names Windows reserves for devices (with any extension); names Maildir uses itself.
RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "clock$"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
    | {"cur", "new", "tmp"}
)


def safe_component(name: str, *, max_bytes: int = MAX_COMPONENT_BYTES, empty: str = "_") -> str:
    """One path component for ``name``: never empty, ``.``, ``..``, hidden or reserved.

    Separators and control characters become ``_``; leading dots and spaces and
    trailing dots and spaces are dropped (Windows drops trailing ones silently,
    and a leading dot hides the file or, as ``..``, climbs); reserved device
    names and Maildir's ``cur``/``new``/``tmp`` get a ``_`` prefix; the result is
    cut to ``max_bytes`` of UTF-8 on a character boundary.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join("_" if unicodedata.category(ch) in _INVISIBLE_CATEGORIES else ch for ch in text)
    text = _UNSAFE.sub("_", text)
    text = text.strip(" .")
    if not text:
        text = empty
    stem = text.split(".", 1)[0].rstrip(" ").lower()
    if stem in RESERVED:
        text = f"_{text}"
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:
        text = encoded[:max_bytes].decode("utf-8", "ignore").rstrip(" .") or empty
    return text


def safe_relpath(parts: Iterable[str]) -> PurePosixPath:
    """A relative path of :func:`safe_component` parts (at least one)."""
    safe = [safe_component(part) for part in parts]
    return PurePosixPath(*safe) if safe else PurePosixPath("_")


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` (resolved, symlinks followed) lies within ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
