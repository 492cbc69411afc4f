"""What legal holds protect: the messages their queries match, and those they cannot see.

Why a module of its own, in the sync layer: every path that deletes mail asks
it -- archive retention and server expunges (:mod:`syncer.retention`) and POP3
``delete_after_days``/``delete_after_archive`` during a sync
(:mod:`syncer.sync.maildrop`) -- and the sync layer is the highest one the
POP3 pipeline may import.

A hold's query matches normalized fields. A message awaiting normalization, or
whose normalization failed or was partial, might be one a hold covers without
its query finding it, so while any hold is active such a message is protected
too ("when in doubt, keep"); without an active hold nothing is.

Public API: :class:`Protection`, :func:`protection`, :func:`held_ids`, :data:`Selector`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncer.archive.search.store import StoreSearch
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_retention import Hold

#: A query (the search language) to the ids of the messages it matches.
Selector = Callable[[str], Iterable[int]]


@dataclass(frozen=True, slots=True)
class Protection:
    """Which of some messages must not be deleted anywhere, and why.

    :ivar holds: the names of the active holds.
    :ivar held: ids an active hold's query matches.
    :ivar blind: ids a hold cannot see (while a hold is active), with the reason.
    """

    holds: tuple[str, ...] = ()
    held: frozenset[int] = frozenset()
    blind: dict[int, str] = field(default_factory=dict)

    def covers(self, pk: int | None) -> bool:
        """True when message ``pk`` must be kept (with a hold active, unknown ones too)."""
        return self.reason(pk) is not None

    def reason(self, pk: int | None) -> str | None:
        """Why ``pk`` is kept, or None when it is not."""
        if not self.holds:
            return None
        if pk is None:
            return "no archived message for a hold to see"
        if pk in self.held:
            return "under a legal hold"
        return self.blind.get(pk)


def archive_selector(store: ArchiveStore) -> Selector:
    """Select with the archive's search (``ArchiveStore.select_message_ids``).

    :raises QuerySyntaxError: (exit 2) for a malformed query.
    """
    searcher: StoreSearch = store  # the query-language selection of the search mixin

    def select(query: str) -> Iterable[int]:
        return [pk for batch in searcher.select_message_ids(query) for pk in batch]

    return select


def held_ids(holds: Sequence[Hold], select: Selector) -> set[int]:
    """Ids of the messages any of these holds covers (evaluated now)."""
    found: set[int] = set()
    for hold in holds:
        found.update(select(hold.query))
    return found


def protection(
    store: ArchiveStore, pks: Sequence[int], *, select: Selector | None = None
) -> Protection:
    """What the active holds protect among ``pks`` (evaluated now).

    :param select: how hold queries select messages (default: the archive's search).
    """
    holds = store.holds()
    if not holds:
        return Protection()
    held = held_ids(holds, select or archive_selector(store))
    return Protection(
        holds=tuple(h.name for h in holds),
        held=frozenset(held.intersection(pks)),
        blind=store.hold_blind(pks),
    )
