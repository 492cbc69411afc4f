"""Folder names as people see them, and back: THE translation between an IMAP server's
wire names and the names syncer shows, matches, searches, exports and pushes.

Why this exists: servers disagree on how they spell a folder. Dovecot lists
``Archive/2024``; Courier and Debian's Cyrus list ``INBOX.Archive.2024`` (a
personal namespace prefix ``INBOX.`` and ``.`` between levels); names are
modified UTF-7 on the wire (``&ANw-berweisungen``). People should write
``--folder 'Archive/*'``, ``exclude = ["Trash"]`` and ``folder:Überweisungen``
whatever the server, so every folder gets one *shown name*:

* ``INBOX`` is ``INBOX``.
* A personal folder loses the personal namespace prefix (``INBOX.Trash`` ->
  ``Trash``); when what is left would read as ``INBOX`` or as the root of another
  namespace (``INBOX.user`` on a server whose other users are under ``user.``), the
  prefix stays (``INBOX/user``) so no two folders ever show the same.
* Folders of other users' and shared namespaces keep their prefix
  (``user.bob.Sent`` -> ``user/bob/Sent``, ``Other Users/bob/Sent``,
  ``shared/bob/INBOX``): they are someone else's, and that shows.
* Levels are joined with ``/`` whatever the server's delimiter, each level
  modified-UTF-7 decoded.
* A ``/`` inside a level (possible where the delimiter is ``.``) is written
  ``%2F``, and a ``%`` that would read as such an escape (``%2F``, ``%25``) is
  written ``%25``, so a shown name maps back to exactly one folder and never
  makes a path level of its own.

The wire name stays the protocol's and the archive's key; the shown name is
``FolderStatus.display_name`` (the ``folders.display_name`` column).

Public API: :class:`FolderNaming` (``shown``, ``wire``, ``wire_of_levels``),
:func:`shown_levels`, :func:`join_levels`, :func:`decode_level`, :func:`encode_level`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from imapclient import imap_utf7

__all__ = [
    "FolderNaming",
    "decode_level",
    "encode_level",
    "join_levels",
    "shown_levels",
]

_ESCAPE = re.compile(r"/|%(?=2[Ff]|25)")
_UNESCAPE = re.compile(r"%(2[Ff]|25)")


def decode_level(raw: str) -> str:
    """One wire level, modified UTF-7 decoded (RFC 3501 5.1.3); undecodable stays as sent."""
    try:
        return str(imap_utf7.decode(raw.encode("utf-8", "surrogateescape")))
    except Exception:  # imapclient raises assorted errors on malformed base64
        return raw


def encode_level(level: str) -> str:
    """One level in modified UTF-7, the form a server is sent."""
    return str(imap_utf7.encode(level).decode("ascii"))


def join_levels(levels: Sequence[str]) -> str:
    """Decoded levels as one shown name: ``/`` between them, a ``/`` within one escaped."""
    return "/".join(_ESCAPE.sub(_escape, level) for level in levels)


def _escape(match: re.Match[str]) -> str:
    return "%2F" if match.group() == "/" else "%25"


def shown_levels(shown: str) -> tuple[str, ...]:
    """The inverse of :func:`join_levels`: ``a%2Fb/c`` -> ``("a/b", "c")``."""
    return tuple(
        _UNESCAPE.sub(lambda m: "/" if m.group(1) in ("2F", "2f") else "%", level)
        for level in shown.split("/")
    )


def _split(wire: str, delimiter: str | None) -> list[str]:
    return wire.split(delimiter) if delimiter else [wire]


@dataclass(frozen=True, slots=True)
class FolderNaming:
    """How one server names folders.

    :ivar prefix: the personal namespace prefix (``INBOX.`` on Courier, ``""`` on Dovecot).
    :ivar delimiter: the personal namespace's hierarchy delimiter (None: flat).
    :ivar others: ``(prefix, delimiter)`` of other users' and shared namespaces.
    """

    prefix: str = ""
    delimiter: str | None = "/"
    others: tuple[tuple[str, str | None], ...] = ()

    def _other(self, wire: str) -> tuple[str, str | None] | None:
        """The other/shared namespace ``wire`` is in (its root included), longest first."""
        best: tuple[str, str | None] | None = None
        for prefix, delimiter in self.others:
            root = prefix[: -len(delimiter)] if delimiter and prefix.endswith(delimiter) else None
            inside = prefix and (wire.startswith(prefix) or wire == root)
            if inside and (best is None or len(prefix) > len(best[0])):
                best = (prefix, delimiter)
        return best

    def _reserved(self, first: str) -> bool:
        """Whether a personal folder's first level, shown without the prefix, would read
        as INBOX or as another namespace's root."""
        if first.upper() == "INBOX":
            return True
        roots = {join_levels([decode_level(_split(p, d)[0])]) for p, d in self.others if p}
        return first in roots

    def shown(self, wire: str, delimiter: str | None = None) -> str:
        """The name people see for the folder the server calls ``wire``.

        :param delimiter: the folder's own delimiter from LIST (default: the personal one).
        """
        if wire.upper() == "INBOX":
            return "INBOX"
        other = self._other(wire)
        if other is not None:
            return join_levels([decode_level(p) for p in _split(wire, other[1] or delimiter)])
        delimiter = delimiter if delimiter is not None else self.delimiter
        rest = wire
        if self.prefix and wire.startswith(self.prefix) and len(wire) > len(self.prefix):
            rest = wire[len(self.prefix) :]
            if self._reserved(decode_level(_split(rest, delimiter)[0])):
                rest = wire  # INBOX.INBOX or INBOX.user: keep the prefix, stay unambiguous
        return join_levels([decode_level(p) for p in _split(rest, delimiter)])

    def wire_of_levels(self, levels: Sequence[str], *, replace: bool = True) -> str:
        """The personal wire name for decoded ``levels``: prefix, modified UTF-7, delimiter.

        :param replace: a delimiter character inside a level becomes ``_`` (a level the
            server cannot hold as such, e.g. ``a.b`` pushed to a ``.`` server).
        """
        if len(levels) == 1 and levels[0].upper() == "INBOX":
            return "INBOX"
        delimiter = self.delimiter or ""
        prefix_levels = [decode_level(p) for p in _split(self.prefix, delimiter) if p]
        if (
            prefix_levels
            and len(levels) > len(prefix_levels)
            and list(levels[: len(prefix_levels)]) == prefix_levels
            and self._reserved(levels[len(prefix_levels)])
        ):
            levels = levels[len(prefix_levels) :]  # shown with its prefix kept (see shown())
        parts = [
            encode_level(level.replace(delimiter, "_") if replace and delimiter else level)
            for level in levels
        ]
        return self.prefix + delimiter.join(parts)

    def wire(self, shown: str) -> str:
        """The inverse of :meth:`shown` for personal folders and other namespaces alike."""
        levels = shown_levels(shown)
        for prefix, delimiter in self.others:
            first = [decode_level(p) for p in _split(prefix, delimiter) if p]
            if first and list(levels[: len(first)]) == first:
                return (delimiter or "").join(encode_level(level) for level in levels)
        return self.wire_of_levels(levels, replace=False)
