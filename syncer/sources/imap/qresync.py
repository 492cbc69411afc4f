"""What EXAMINE answered, including the QRESYNC extras imapclient does not implement.

Why this exists: with QRESYNC (RFC 7162) a single ``EXAMINE folder (QRESYNC
(uidvalidity modseq))`` tells which UIDs vanished and which flags changed since
the archive's last visit, which is what makes a delta sync a single round trip.
imapclient has no support for the ``VANISHED (EARLIER)`` response or the QRESYNC
select parameter, so this module reads the untagged responses of the EXAMINE
itself and decides whether the answer can be trusted.

Distrust rules (the pipeline then falls back to the full-listing path):

* ``HIGHESTMODSEQ 0`` -- no valid mod-sequence exists; report ``highestmodseq=None``.
* ``NOMODSEQ`` -- the folder has no mod-sequences (RFC 7162 3.1.2.2).
* A malformed ``VANISHED`` or ``FETCH`` answer -- the delta is incomplete.
* More than ``MAX_VANISHED_RANGES`` vanished ranges or ``MAX_ANSWER_UIDS`` changed
  messages -- a flood. VANISHED is parsed as it arrives into ranges that are never
  expanded (:class:`~syncer.sources.imap.parser.UIDRanges`: ``1:4000000000`` costs
  16 bytes), and dropped once past the cap, so memory stays bounded. The full
  listing then finds what really vanished.
* UIDVALIDITY differs from the one sent -- the server must ignore the
  parameters (RFC 7162 3.2.5), so there is no delta; UIDVALIDITY handling is the
  pipeline's.

Public API (private to ``syncer.sources``): :class:`SelectReader`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from syncer.model import FlagState, SelectedFolder
from syncer.sources.imap.parser import (
    MAX_ANSWER_UIDS,
    MAX_VANISHED_RANGES,
    Response,
    ResponseError,
    UIDRanges,
    is_fetch,
    parse_fetch,
    parse_uid_ranges,
)

_EXISTS = re.compile(rb"\* (\d+) EXISTS\Z", re.IGNORECASE)
_CODE = re.compile(rb"\* OK \[([A-Za-z-]+)(?: ([^\]]*))?\]", re.IGNORECASE)
_VANISHED = re.compile(rb"\* VANISHED (\(EARLIER\) )?(.*)\Z", re.IGNORECASE | re.DOTALL)


@dataclass(slots=True)
class SelectReader:
    """Collects the untagged responses of one EXAMINE; :meth:`result` judges them.

    Feed every untagged response with :meth:`feed`, in order.
    """

    exists: int | None = None
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    nomodseq: bool = False
    problems: list[str] = field(default_factory=list)
    _vanished: list[tuple[int, int]] = field(default_factory=list)
    _changed: dict[int, FlagState] = field(default_factory=dict)
    _flooded: bool = False

    def feed(self, response: Response) -> None:
        text = response.text
        m = _EXISTS.match(text)
        if m is not None:
            self.exists = int(m.group(1))
            return
        m = _CODE.match(text)
        if m is not None:
            self._code(m.group(1).upper(), m.group(2))
            return
        m = _VANISHED.match(text)
        if m is not None:
            self._add_vanished(m.group(2).strip())
            return
        if is_fetch(text):
            self._fetch(response)
        # FLAGS, RECENT, PERMANENTFLAGS, UNSEEN, CLOSED, ... are not needed.

    def _add_vanished(self, uid_set: bytes) -> None:
        """Add a VANISHED set's ranges (never expanded), clipped at UIDNEXT when known
        (Dovecot announces it before VANISHED); past the cap the delta is given up."""
        if self._flooded:
            return
        limit = self.uidnext - 1 if self.uidnext else None
        try:
            parse_uid_ranges(uid_set, self._vanished, max_ranges=MAX_VANISHED_RANGES, limit=limit)
        except ResponseError as exc:
            self._give_up(f"VANISHED: {exc}")

    def _give_up(self, problem: str) -> None:
        self.problems.append(problem)
        self._flooded = True
        self._vanished = []
        self._changed = {}

    def _code(self, code: bytes, data: bytes | None) -> None:
        if code == b"NOMODSEQ":
            self.nomodseq = True
            return
        if code not in (b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ"):
            return
        if data is None or not data.strip().isdigit():
            self.problems.append(f"malformed [{code.decode()}] {data!r}")
            return
        value = int(data)
        if code == b"UIDVALIDITY":
            self.uidvalidity = value
        elif code == b"UIDNEXT":
            self.uidnext = value
        else:
            self.highestmodseq = value

    def _fetch(self, response: Response) -> None:
        if self._flooded:
            return
        if len(self._changed) >= MAX_ANSWER_UIDS:
            self._give_up(f"more than {MAX_ANSWER_UIDS:,} changed messages")
            return
        try:
            item = parse_fetch(response)
        except ResponseError as exc:
            self.problems.append(f"malformed FETCH: {exc}")
            return
        if item.uid is None or item.flags is None:
            # Under QRESYNC every FETCH in the EXAMINE answer carries UID and FLAGS.
            self.problems.append(f"FETCH without UID or FLAGS: {response.text[:80]!r}")
            return
        self._changed[item.uid] = FlagState(item.uid, item.flags, item.modseq)

    def result(
        self,
        name: str,
        *,
        qresync: tuple[int, int] | None,
        condstore: bool,
    ) -> tuple[SelectedFolder, str | None]:
        """The SelectedFolder to report, and why QRESYNC/CONDSTORE data was distrusted
        (None when it was not).

        :param qresync: the ``(uidvalidity, modseq)`` sent with EXAMINE, or None.
        :param condstore: whether CONDSTORE/QRESYNC was in play at all.
        :raises ResponseError: when UIDVALIDITY or EXISTS is missing.
        """
        if self.uidvalidity is None:
            raise ResponseError(f"EXAMINE {name!r} answered without UIDVALIDITY")
        if self.exists is None:
            raise ResponseError(f"EXAMINE {name!r} answered without EXISTS")
        uidnext = self.uidnext if self.uidnext is not None else 0
        distrust: str | None = None
        highestmodseq = self.highestmodseq
        if condstore and self.highestmodseq == 0:
            distrust = "HIGHESTMODSEQ 0"
        elif self.problems:
            distrust = "; ".join(self.problems)
        # Nothing with a UID at or above UIDNEXT ever existed (clipped again here for
        # servers that announce UIDNEXT after VANISHED).
        ranges = self._vanished
        if uidnext > 0:
            ranges = [(lo, min(hi, uidnext - 1)) for lo, hi in ranges if lo < uidnext]
        vanished = UIDRanges(ranges)
        if distrust is not None:
            highestmodseq = None
        if self.nomodseq or highestmodseq == 0:
            highestmodseq = None
        honoured = (
            distrust is None
            and qresync is not None
            and highestmodseq is not None
            and qresync[0] == self.uidvalidity
        )
        selected = SelectedFolder(
            name=name,
            uidvalidity=self.uidvalidity,
            uidnext=uidnext,
            exists=self.exists,
            highestmodseq=highestmodseq,
            qresync=honoured,
            vanished=vanished if honoured else frozenset(),
            changed=tuple(sorted(self._changed.values(), key=lambda f: f.uid)) if honoured else (),
        )
        return selected, distrust
