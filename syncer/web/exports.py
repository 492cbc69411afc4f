"""Streamed exports of a search: an mbox (mboxrd) or a zip of ``.eml`` files.

Why this module exists: an export can be the whole archive, so it is produced
message by message while the response is sent, never held in memory. The mbox
is written by :func:`syncer.formats.mbox.write_message` (the same bytes as
``syncer export --format mbox``); the zip is written by :mod:`zipfile` to a
non-seekable sink (it then uses data descriptors), its member names made from
the message date, subject and SHA-256 by :func:`syncer.formats.eml.eml_name`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO, cast

from syncer.formats.eml import eml_name
from syncer.formats.mbox import write_message

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_retention import MessageFacts

__all__ = ["FORMATS", "stream_export"]

FORMATS = {"mbox": "application/mbox", "zip": "application/zip"}
_BATCH = 200


class _Sink:
    """A write-only, non-seekable file whose contents are taken out as they grow."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _messages(
    store: ArchiveStore, query: str, accounts: Sequence[str] | None
) -> Iterator[tuple[bytes, MessageFacts]]:
    """The raw bytes and facts of every message matching ``query``, in id order."""
    for batch in store.select_message_ids(query, batch_size=_BATCH, accounts=accounts):
        facts = store.message_facts(batch)
        raws = store.raw_messages([facts[pk].sha256 for pk in batch if pk in facts])
        for pk in batch:
            fact = facts.get(pk)
            if fact is not None and fact.sha256 in raws:
                yield raws[fact.sha256], fact


def stream_export(
    store: ArchiveStore, query: str, fmt: str, *, accounts: Sequence[str] | None = None
) -> Iterator[bytes]:
    """The export file, chunk by chunk (about one chunk per message).

    :param accounts: only messages of these accounts (a reader's); None: all.
    """
    sink = _Sink()
    out = cast(BinaryIO, sink)
    if fmt == "mbox":
        for raw, fact in _messages(store, query, accounts):
            write_message(out, raw, fact.aged_from)
            yield sink.take()
        return
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for raw, fact in _messages(store, query, accounts):
            archive.writestr(eml_name(fact.aged_from, fact.subject, fact.sha256), raw)
            yield sink.take()
    yield sink.take()
