"""Maildir folders: messages as files, flags in the file name, keywords in a sidecar.

Layout syncer writes (a directory tree, the layout Dovecot calls ``LAYOUT=fs``)::

    PATH/INBOX/{cur,new,tmp}/            every folder is a Maildir of its own
    PATH/Archive/2023/{cur,new,tmp}/     sub-folders nest as directories
    PATH/Archive/2023/syncer-keywords.json   {"<file name>": ["$Label1", ...]}

Why a tree and not Maildir++ (``.Archive.2023`` beside INBOX): Maildir++
cannot hold a ``.`` in a folder name without an escape other readers disagree
on, while a tree keeps every name readable; mutt, neomutt and notmuch open each
folder directly, and Dovecot reads the whole tree with
``maildir:PATH:LAYOUT=fs:INBOX=PATH/INBOX``.

A message is written to ``cur/`` as ``<time>.<sha256 prefix>.syncer:2,<info>``,
atomically (a file in ``tmp/`` renamed into place), with the file's mtime set
to the INTERNALDATE (Dovecot's convention). ``<info>`` holds the standard flag
letters in ASCII order: D (``\\Draft``), F (``\\Flagged``), P (``$Forwarded``),
R (``\\Answered``), S (``\\Seen``), T (``\\Deleted``). Keywords have no standard
place in a Maildir name (Dovecot's ``dovecot-keywords`` letters stop at 26), so
they go into ``syncer-keywords.json`` per folder, keyed by file name.

Reading (:func:`read_folder`, :func:`find_folders`) accepts both layouts, the
``new/`` directory (not ``\\Seen``), our keyword sidecar and Dovecot's
``dovecot-keywords``.

Public API: :func:`info_suffix`, :func:`flags_from_name`, :class:`MaildirWriter`,
:func:`find_folders`, :func:`read_folder`, :class:`MaildirMessage`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from syncer.formats.files import SymlinkRefused, create_private, private_dir, write_private

__all__ = [
    "KEYWORDS_FILE",
    "MaildirMessage",
    "MaildirWriter",
    "find_folders",
    "flags_from_name",
    "info_suffix",
    "read_folder",
]

KEYWORDS_FILE = "syncer-keywords.json"
_LETTERS = {
    "\\draft": "D",
    "\\flagged": "F",
    "$forwarded": "P",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}
_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$Forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
_SUBDIRS = ("cur", "new", "tmp")
_DOVECOT_KEYWORD = re.compile(r"(\d+) (.+)")


def info_suffix(flags: Iterable[str]) -> tuple[str, list[str]]:
    """``(":2,<letters>", keywords)``: the info suffix for ``flags`` and what does not fit it.

    ``\\Recent`` is dropped (it belongs to a session, not a message).
    """
    letters: set[str] = set()
    keywords: list[str] = []
    for flag in flags:
        letter = _LETTERS.get(flag.lower())
        if letter is not None:
            letters.add(letter)
        elif flag.lower() != "\\recent":
            keywords.append(flag)
    return ":2," + "".join(sorted(letters)), sorted(keywords)


def flags_from_name(name: str) -> tuple[set[str], str]:
    """``(flags, dovecot keyword letters)`` from a Maildir file name's info suffix."""
    _, sep, info = name.rpartition(":2,")
    if not sep:
        _, sep, info = name.rpartition("!2,")  # the Windows-safe separator some tools use
    if not sep:
        return set(), ""
    flags = {_FLAGS[ch] for ch in info if ch in _FLAGS}
    return flags, "".join(ch for ch in info if "a" <= ch <= "z")


class MaildirWriter:
    """Writes messages into Maildir folders below ``root``; call :meth:`close` at the end.

    Keyword sidecars are read on first use of a folder and rewritten by
    :meth:`close` (atomically), so an incremental export adds to them.
    """

    def __init__(self) -> None:
        self._keywords: dict[Path, dict[str, list[str]]] = {}
        self._made: set[Path] = set()

    def _folder(self, folder: Path) -> None:
        if folder in self._made:
            return
        for sub in _SUBDIRS:
            private_dir(folder / sub)
        sidecar = folder / KEYWORDS_FILE
        self._keywords[folder] = json.loads(sidecar.read_text("utf-8")) if sidecar.exists() else {}
        self._made.add(folder)

    def add(
        self, folder: Path, raw: bytes, flags: Iterable[str], when: datetime | None, key: str
    ) -> Path:
        """Write ``raw`` into the Maildir ``folder``; ``key`` makes the name unique there.

        :returns: the path of the new file.
        """
        self._folder(folder)
        info, keywords = info_suffix(flags)
        stamp = int((when or datetime(1970, 1, 1, tzinfo=UTC)).timestamp())
        name = f"{stamp}.{key}.syncer{info}"
        tmp = folder / "tmp" / f"{stamp}.{key}.syncer"
        final = folder / "cur" / name
        tmp.unlink(missing_ok=True)  # a leftover of a crash; never followed if a link
        with os.fdopen(create_private(tmp), "wb") as fh:  # 0600, O_EXCL | O_NOFOLLOW
            fh.write(raw)
        if when is not None:
            os.utime(tmp, (stamp, stamp), follow_symlinks=False)
        os.replace(tmp, final)
        if keywords:
            self._keywords[folder][name] = keywords
        return final

    def close(self) -> None:
        """Write the keyword sidecars of the folders touched."""
        for folder, keywords in self._keywords.items():
            sidecar = folder / KEYWORDS_FILE
            if not keywords and not sidecar.exists():
                continue
            text = json.dumps(keywords, indent=1, sort_keys=True)
            write_private(sidecar, text.encode("utf-8"), sync=False)


@dataclass(frozen=True, slots=True)
class MaildirMessage:
    """One message file: its bytes, flags (keywords included) and mtime as INTERNALDATE."""

    raw: bytes
    flags: tuple[str, ...]
    when: datetime
    path: Path


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def find_folders(root: Path) -> list[tuple[tuple[str, ...], Path]]:
    """Every Maildir under ``root`` as ``(folder path parts, directory)``.

    ``root`` itself, when a Maildir, is ``()`` (the caller calls it INBOX or
    ``--folder``). Maildir++ sub-folders (``.A.B`` beside ``cur``) are ``("A", "B")``;
    directory-tree folders are their relative path.
    """
    found: list[tuple[tuple[str, ...], Path]] = []
    if _is_maildir(root):
        found.append(((), root))
    for dirpath, dirnames, _files in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in _SUBDIRS)
        for name in dirnames:
            child = here / name
            if not _is_maildir(child):
                continue
            if here == root and name.startswith(".") and name not in (".", ".."):
                parts = tuple(p for p in name[1:].split(".") if p)  # Maildir++
            else:
                parts = child.relative_to(root).parts
            found.append((parts, child))
    return found


def _dovecot_keywords(folder: Path) -> dict[str, str]:
    path = folder / "dovecot-keywords"
    if not path.exists():
        return {}
    letters: dict[str, str] = {}
    for line in path.read_text("utf-8", "replace").splitlines():
        m = _DOVECOT_KEYWORD.fullmatch(line.strip())
        if m and int(m.group(1)) < 26:
            letters[chr(ord("a") + int(m.group(1)))] = m.group(2)
    return letters


def read_folder(folder: Path) -> Iterator[MaildirMessage]:
    """The messages of one Maildir folder (``new/`` then ``cur/``, by file name)."""
    sidecar = folder / KEYWORDS_FILE
    ours: dict[str, list[str]] = json.loads(sidecar.read_text("utf-8")) if sidecar.exists() else {}
    theirs = _dovecot_keywords(folder)
    for sub in ("new", "cur"):
        directory = folder / sub
        for path in sorted(directory.iterdir()):
            if path.is_symlink():  # a link to /etc/shadow is not a message
                raise SymlinkRefused(f"{path} is a symbolic link; syncer does not follow links.")
            if not path.is_file() or path.name.startswith("."):
                continue
            flags, letters = flags_from_name(path.name)
            flags.update(ours.get(path.name, ()))
            flags.update(theirs[ch] for ch in letters if ch in theirs)
            if sub == "new":
                flags.discard("\\Seen")
            stat = path.stat()
            yield MaildirMessage(
                raw=path.read_bytes(),
                flags=tuple(sorted(flags)),
                when=datetime.fromtimestamp(stat.st_mtime, UTC),
                path=path,
            )
