"""The archive as ``syncer show`` reads it: :class:`MessageReader`.

Why this module exists: :class:`~syncer.archive.store.ArchiveStore` is built from
mixins, and importing it imports every one of them with their tables, views and
helpers (the sync hot path, POP3, retention, relay, transfer, the index writer,
users, runs and leases) -- about a tenth of the instructions of a ``syncer show``,
which calls three methods. A command that needs a few mixins opens a class made of
just those (:meth:`~syncer.archive.store_base.StoreCore.open` opens any of them):
``syncer show`` this one, ``syncer search``
:class:`~syncer.archive.search.store.StoreSearch` alone. It is the same code, not a
second way into the archive: nothing is defined here, and ``ArchiveStore`` is a
subclass, so whatever takes a reader takes the whole store.
"""

from __future__ import annotations

from syncer.archive.search.store import StoreSearch
from syncer.archive.store_normalize import StoreNormalize

__all__ = ["MessageReader"]


class MessageReader(StoreNormalize, StoreSearch):
    """Find a message, its details (:class:`~syncer.archive.views.MessageDetail`), its raw
    bytes, and (by search) its thread."""
