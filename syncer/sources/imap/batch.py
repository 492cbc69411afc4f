"""What one body batch may bring back: the bounds a hostile server cannot push past.

Why this exists: a ``UID FETCH set (... BODY.PEEK[])`` answer is whatever the
server chooses to send. Kept naively, bodies for UIDs never asked for pile up
(600 MB sent became 676 MB of memory), one literal may claim 2 GiB whatever
RFC822.SIZE said, and a second, different body for a UID silently replaces the
first. :class:`BatchGuard` holds the batch's plan (UID -> the RFC822.SIZE the
listing announced) and decides, response by response, what is kept:

* a response for a UID not in the batch is dropped at once and counted
  (``imap.fetch.unsolicited``, a warning): memory never holds more than that one
  response;
* no response may announce more literal bytes than the largest planned body
  plus :func:`~syncer.sources.imap.parser.body_allowance` (enforced by the reader
  before it reads: :attr:`BatchGuard.max_literal`), and a body longer than its own
  UID's allowance is dropped and is a protocol error for the batch;
* a second body for a UID that differs from the first is dropped and is a
  protocol error for the batch (the archive keeps one body per UID and cannot
  tell which is true); an identical repeat is harmless and merged.

So what the batch keeps is bounded by the sum of its planned sizes plus their
allowances, i.e. by ``batch_bytes`` plus a margin. A protocol error fails the
batch before anything of it is archived (batches before it stay committed);
the run fails with a message naming the UIDs, and the next run retries.

Public API (private to ``syncer.sources``): :class:`BatchGuard`.
"""

from __future__ import annotations

import structlog

from syncer.sources.imap.parser import FetchItem, ResponseError, body_allowance

log = structlog.get_logger(__name__)

#: How many UIDs a log line or an error names at most.
_SHOWN = 20


class BatchGuard:
    """Filters the FETCH responses of one body batch; :meth:`take` is the ``on_item``.

    :param planned: UID -> RFC822.SIZE from the listing, for the UIDs of the batch.
    """

    def __init__(self, planned: dict[int, int]) -> None:
        self.planned = planned
        self.got: dict[int, FetchItem] = {}
        self.expected_bytes = sum(planned.values())
        self.max_literal = body_allowance(max(planned.values(), default=0))
        self._unsolicited = 0
        self._unsolicited_uids: list[int] = []
        self._oversized: dict[int, int] = {}
        self._conflicting: list[int] = []

    def take(self, item: FetchItem) -> None:
        """Keep what belongs to the batch; drop and count the rest."""
        uid = item.uid
        size = None if uid is None else self.planned.get(uid)
        if uid is None or size is None:
            self._unsolicited += 1
            if uid is not None and len(self._unsolicited_uids) < _SHOWN:
                self._unsolicited_uids.append(uid)
            return
        body = item.sections.get("")
        # Only BODY[] was asked for; any other section a server adds is not kept.
        item.sections = {"": body} if "" in item.sections else {}
        if body is not None and len(body) > body_allowance(size):
            self._oversized.setdefault(uid, len(body))
            del item.sections[""]
        previous = self.got.get(uid)
        if previous is None:
            self.got[uid] = item
            return
        earlier = previous.sections.get("")
        if body is not None and earlier is not None and "" in item.sections and body != earlier:
            if uid not in self._conflicting:
                self._conflicting.append(uid)
            del item.sections[""]
        previous.merge(item)

    def report(self, folder: str) -> None:
        """Log what was dropped; raise for what makes the batch untrustworthy.

        :raises ResponseError: for an oversized body or two different bodies for one UID.
        """
        if self._unsolicited:
            log.warning(
                "imap.fetch.unsolicited",
                folder=folder,
                count=self._unsolicited,
                uids=self._unsolicited_uids,
            )
        problems: list[str] = []
        if self._oversized:
            shown = ", ".join(
                f"UID {uid} ({got:,} bytes, RFC822.SIZE {self.planned[uid]:,})"
                for uid, got in list(self._oversized.items())[:_SHOWN]
            )
            problems.append(f"bodies larger than the size the server announced: {shown}")
        if self._conflicting:
            shown = ", ".join(str(uid) for uid in self._conflicting[:_SHOWN])
            problems.append(f"two different bodies for UID {shown}")
        if problems:
            raise ResponseError(
                "; ".join(problems) + " (nothing of this batch was archived; the next run retries)"
            )
