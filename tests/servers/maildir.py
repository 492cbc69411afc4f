"""Write messages straight into Maildir folders, for seeding big test corpora fast.

APPENDing 10,000 messages over IMAP takes minutes of round trips; writing the
files Dovecot would have written takes well under a second, and Dovecot
indexes them on its next sync (``doveadm force-resync``). Only
:mod:`tests.servers.dovecot` uses this.

What a file carries (maildir(5), Dovecot's Maildir format documentation):

- flags in the ``:2,`` info suffix, system flags as capital letters sorted
  alphabetically, keywords as the letters ``a``..``z`` that the folder's
  ``dovecot-keywords`` file maps to names (so at most 26 keywords per folder);
- ``S=<bytes>`` in the name, which Dovecot trusts as the physical size;
- INTERNALDATE as the file's mtime.

Public API: :class:`MaildirWriter`, :func:`make_maildir`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

#: IMAP system flags and their Maildir info letters.
SYSTEM_FLAG_LETTERS = {
    "\\draft": "D",
    "\\flagged": "F",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}

#: One message to write: raw bytes, flags (system flags and keywords), INTERNALDATE.
Item = tuple[bytes, Sequence[str | bytes], datetime | None]


def make_maildir(path: Path, uid: int, gid: int) -> None:
    """Create *path* with ``cur``/``new``/``tmp`` (and missing parents), owned by uid:gid."""
    created = []
    for directory in [*reversed(path.parents), path, path / "cur", path / "new", path / "tmp"]:
        if not directory.exists():
            directory.mkdir()
            created.append(directory)
    for directory in created:
        os.chown(directory, uid, gid)


class MaildirWriter:
    """Writes message files owned by uid:gid, named so Dovecot keeps the write order.

    Dovecot gives new files UIDs in the order of the time stamp at the start of
    their names, so every file gets the next value of a counter that starts at
    the current time: messages written later always sort later, across calls.
    """

    def __init__(self, uid: int, gid: int) -> None:
        self.uid = uid
        self.gid = gid
        self._clock = int(datetime.now().timestamp())

    def write(self, path: Path, items: Iterable[Item]) -> int:
        """Write *items* into the Maildir at *path* (``cur/``); return how many.

        :raises ValueError: on a system flag Maildir cannot store (``\\Recent``) or a
            27th keyword.
        """
        keywords = _Keywords(path / "dovecot-keywords")
        cur = path / "cur"
        pid = os.getpid()
        count = 0
        for raw, flags, internaldate in items:
            letters = []
            for flag in flags:
                name = flag.decode("ascii") if isinstance(flag, bytes) else flag
                if name.startswith("\\"):
                    letter = SYSTEM_FLAG_LETTERS.get(name.lower())
                    if letter is None:
                        raise ValueError(f"Maildir cannot store the flag {name!r}")
                    letters.append(letter)
                else:
                    letters.append(keywords.letter(name))
            self._clock += 1
            info = "".join(sorted(set(letters)))
            file = cur / f"{self._clock}.M0P{pid}.seed,S={len(raw)}:2,{info}"
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, raw)
                os.fchown(fd, self.uid, self.gid)
            finally:
                os.close(fd)
            if internaldate is not None:
                stamp = internaldate.timestamp()
                os.utime(file, (stamp, stamp))
            count += 1
        keywords.save(self.uid, self.gid)
        return count


class _Keywords:
    """The ``dovecot-keywords`` file of one Maildir: keyword name <-> letter a..z."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.names: list[str] = []
        if path.exists():  # Dovecot may have written it already; keep its letters
            for line in path.read_text().splitlines():
                index, _, name = line.partition(" ")
                if index.isdigit() and name:
                    while len(self.names) <= int(index):
                        self.names.append("")
                    self.names[int(index)] = name
        self._dirty = False

    def letter(self, keyword: str) -> str:
        if keyword not in self.names:
            if len(self.names) >= 26:
                raise ValueError("a Maildir folder holds at most 26 keywords")
            self.names.append(keyword)
            self._dirty = True
        return chr(ord("a") + self.names.index(keyword))

    def save(self, uid: int, gid: int) -> None:
        if not self._dirty:
            return
        self.path.write_text("".join(f"{i} {n}\n" for i, n in enumerate(self.names) if n))
        os.chown(self.path, uid, gid)
